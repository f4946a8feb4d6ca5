"""Order processing: an explicit state machine from pending to processed or failed."""

from __future__ import annotations

import logging
from decimal import Decimal

from django.db import transaction

from orders.errors import InvalidTransition
from orders.models import Order, Payment
from orders.services.inventory import stock_reserve
from workers import queues
from workers.enqueue import enqueue_on_commit

logger = logging.getLogger(__name__)

#: Where each status may go next; anything else is refused.
TRANSITIONS: dict[str, set[str]] = {
    Order.Status.PENDING: {Order.Status.PROCESSING, Order.Status.CANCELLED},
    Order.Status.PROCESSING: {Order.Status.AWAITING_PAYMENT, Order.Status.FAILED},
    Order.Status.AWAITING_PAYMENT: {Order.Status.PAID, Order.Status.FAILED},
    Order.Status.PAID: {Order.Status.PROCESSED},
    Order.Status.FAILED: {Order.Status.AWAITING_PAYMENT},
    Order.Status.PROCESSED: set(),
    Order.Status.CANCELLED: set(),
}


def order_transition(order: Order, status: str, *, reason: str = "") -> None:
    """Move a locked order to ``status``; a move the state machine does not allow raises InvalidTransition."""
    if status not in TRANSITIONS[order.status]:
        raise InvalidTransition(f"order {order.pk} cannot go from {order.status} to {status}")
    order.status = status
    if reason:
        order.failure_reason = reason


def order_queue_processing(*, order_ids: list[int]) -> int:
    """Mark pending orders as processing and enqueue them after commit; returns how many.

    Priority customers' orders go to the urgent queue. Orders not pending are left alone, so a
    double click queues nothing twice.
    """
    from orders.tasks import process_order

    queued = 0
    with transaction.atomic():
        for order in (
            Order.objects.select_for_update()
            .select_related("customer")
            .filter(pk__in=order_ids, status=Order.Status.PENDING)
        ):
            order_transition(order, Order.Status.PROCESSING)
            order.save(update_fields=["status"])
            queue = queues.URGENT if order.customer.is_priority else None
            enqueue_on_commit(process_order, order.pk, queue=queue)
            queued += 1
    return queued


def order_process(*, order_id: int) -> Order:
    """Reserve stock for every item, create the payment and queue its charge, all or nothing.

    Running it again, or twice at once, does nothing more: the order row is locked and only a
    pending or processing order moves on. Out of stock fails the order with the reason and
    leaves stock untouched.
    """
    from orders.tasks import process_payment

    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        if order.status == Order.Status.PENDING:
            order_transition(order, Order.Status.PROCESSING)
        if order.status != Order.Status.PROCESSING:
            logger.info("order %s is %s already; nothing to do", order.pk, order.status)
            return order
        items = list(order.items.all())
        # The total is the items' worth whether or not they can be had, so a failed order shows it too.
        order.total = sum((item.quantity * item.unit_price for item in items), start=Decimal(0))
        shortages = stock_reserve(order=order, items=items) if items else ["the order has no items"]
        if shortages:
            order_transition(order, Order.Status.FAILED, reason="Out of stock: " + "; ".join(shortages))
            order.save(update_fields=["status", "failure_reason", "total"])
            logger.warning("order %s failed: %s", order.pk, order.failure_reason)
            return order
        payment = Payment.objects.create(
            order=order,
            amount=order.total,
            method_token=order.payment_method_token,
            idempotency_key=f"order-{order.pk}-payment",
        )
        order_transition(order, Order.Status.AWAITING_PAYMENT)
        order.save(update_fields=["status", "total"])
        enqueue_on_commit(process_payment, payment.pk)
    return order
