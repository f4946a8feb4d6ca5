"""Stock changes: adjustments asked for by staff, order reservations and releases, each with its audit row."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from orders.errors import InvalidRequest, OutOfStock
from orders.models import InventoryAudit, Order, OrderItem, Product, StockAdjustment
from workers.enqueue import task_named

ADJUST_STOCK = task_named("orders.tasks.adjust_stock")


def inventory_adjust(
    *, product_id: int, change: int, reason: str, note: str = "", idempotency_key: str | None = None
) -> InventoryAudit:
    """Change a product's stock by ``change`` and audit it; a repeated key changes nothing again."""
    if isinstance(change, bool) or not isinstance(change, int) or change == 0:
        raise InvalidRequest(f"quantity change must be a non-zero whole number, got {change!r}")
    if reason not in InventoryAudit.Reason.values:
        raise InvalidRequest(f"unknown reason {reason!r}; use one of {', '.join(InventoryAudit.Reason.values)}")
    with transaction.atomic():
        product = Product.objects.select_for_update().get(pk=product_id)
        if idempotency_key and (done := InventoryAudit.objects.filter(idempotency_key=idempotency_key).first()):
            return done
        if product.stock + change < 0:
            raise OutOfStock(
                f"{product.sku}: stock {product.stock} cannot change by {change} (it would be {product.stock + change})"
            )
        product.stock += change
        product.save(update_fields=["stock", "updated_at"])
        return InventoryAudit.objects.create(
            product=product,
            change=change,
            stock_after=product.stock,
            reason=reason,
            note=note[:200],
            idempotency_key=idempotency_key,
        )


def stock_adjustment_request(
    *, product_ids: list[int], change: int, reason: str, requested_by_id: int | None = None
) -> list[StockAdjustment]:
    """Record a change of stock for each product and queue its job after commit.

    The row is what the person who asked follows: the job marks it done, or refused with the
    reason (stock may have moved since the form checked it).
    """
    with transaction.atomic():
        adjustments = [
            StockAdjustment.objects.create(
                product_id=product_id, change=change, reason=reason, requested_by_id=requested_by_id
            )
            for product_id in sorted(product_ids)
        ]
        for adjustment in adjustments:
            ADJUST_STOCK.enqueue(adjustment.pk)
    return adjustments


def stock_adjustment_apply(*, adjustment_id: int) -> StockAdjustment:
    """Apply a requested adjustment once, and write its outcome: done with the stock left, or refused and why."""
    with transaction.atomic():
        adjustment = StockAdjustment.objects.select_for_update().get(pk=adjustment_id)
        if adjustment.status != StockAdjustment.Status.QUEUED:
            return adjustment
        try:
            audit = inventory_adjust(
                product_id=adjustment.product_id,
                change=adjustment.change,
                reason=adjustment.reason,
                note=f"stock adjustment {adjustment.pk}",
                idempotency_key=f"stock-adjustment:{adjustment.pk}",
            )
        except (OutOfStock, InvalidRequest) as refusal:
            # Asked for in good faith and refused by the stock as it is now: the answer goes to
            # the row its author watches, not to a dead letter nobody is told of.
            adjustment.status, adjustment.outcome = StockAdjustment.Status.REFUSED, f"Refused: {refusal}"[:300]
        else:
            adjustment.status, adjustment.audit = StockAdjustment.Status.DONE, audit
            adjustment.outcome = f"Done: stock is now {audit.stock_after}."
        adjustment.finished_at = timezone.now()
        adjustment.save(update_fields=["status", "outcome", "audit", "finished_at"])
    return adjustment


def stock_reserve(*, order: Order, items: list[OrderItem]) -> list[str]:
    """Take every item's quantity out of stock, or nothing at all; returns the shortages.

    Runs inside the caller's transaction. Products are locked in id order, so two orders
    sharing products cannot deadlock.
    """
    wanted: dict[int, int] = {}
    for item in items:
        wanted[item.product_id] = wanted.get(item.product_id, 0) + item.quantity
    products = list(Product.objects.select_for_update().filter(pk__in=wanted).order_by("pk"))
    shortages = [
        f"{product.sku} (ordered {wanted[product.pk]}, in stock {product.stock})"
        for product in products
        if product.stock < wanted[product.pk]
    ]
    if shortages:
        return shortages
    for product in products:
        product.stock -= wanted[product.pk]
    Product.objects.bulk_update(products, ["stock"])
    round_ = _next_round(order=order, reason=InventoryAudit.Reason.ORDER_RESERVATION)
    InventoryAudit.objects.bulk_create(
        InventoryAudit(
            product=product,
            change=-wanted[product.pk],
            stock_after=product.stock,
            order=order,
            reason=InventoryAudit.Reason.ORDER_RESERVATION,
            idempotency_key=f"order-{order.pk}-reservation-{round_}-{product.pk}",
        )
        for product in products
    )
    return []


def stock_release(*, order: Order, note: str = "") -> list[InventoryAudit]:
    """Give back whatever stock the order still holds, with one "release" audit per product.

    Runs inside the caller's transaction, with the order row locked. What is held is read from
    the order's own audits (reservations minus releases), so releasing twice gives back nothing
    the second time, and an order that reserved nothing releases nothing.
    """
    held = {
        product_id: -total
        for product_id, total in InventoryAudit.objects.filter(
            order=order, reason__in=[InventoryAudit.Reason.ORDER_RESERVATION, InventoryAudit.Reason.RELEASE]
        )
        .values("product_id")
        .annotate(total=Sum("change"))
        .values_list("product_id", "total")
        if total < 0
    }
    if not held:
        return []
    products = list(Product.objects.select_for_update().filter(pk__in=held).order_by("pk"))
    for product in products:
        product.stock += held[product.pk]
    Product.objects.bulk_update(products, ["stock"])
    round_ = _next_round(order=order, reason=InventoryAudit.Reason.RELEASE)
    return InventoryAudit.objects.bulk_create(
        InventoryAudit(
            product=product,
            change=held[product.pk],
            stock_after=product.stock,
            order=order,
            reason=InventoryAudit.Reason.RELEASE,
            note=note[:200],
            idempotency_key=f"order-{order.pk}-release-{round_}-{product.pk}",
        )
        for product in products
    )


def _next_round(*, order: Order, reason: str) -> int:
    # An order may reserve again after a release (re-processed after a restock, a payment
    # retried): each round's audits get keys of their own (numbered by the audits before it),
    # while a replay of the same round under the order's lock writes the same keys and collides.
    return InventoryAudit.objects.filter(order=order, reason=reason).count() + 1
