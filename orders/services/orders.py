"""Order processing: an explicit state machine from pending to processed, failed or cancelled."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction

from orders.errors import InvalidTransition
from orders.models import Order, Payment
from orders.services.emails import customer_mail
from orders.services.inventory import stock_release, stock_reserve
from workers import queues
from workers.enqueue import actor_named, enqueue_on_commit

logger = logging.getLogger(__name__)

#: Where each status may go next; anything else is refused. A failed order may be processed
#: again (it failed for stock, which has come back) or wait for a payment again (retried).
TRANSITIONS: dict[str, set[str]] = {
    Order.Status.PENDING: {Order.Status.PROCESSING, Order.Status.CANCELLED},
    Order.Status.PROCESSING: {Order.Status.AWAITING_PAYMENT, Order.Status.FAILED, Order.Status.CANCELLED},
    Order.Status.AWAITING_PAYMENT: {Order.Status.PAID, Order.Status.FAILED, Order.Status.CANCELLED},
    Order.Status.PAID: {Order.Status.PROCESSED},
    Order.Status.FAILED: {Order.Status.AWAITING_PAYMENT, Order.Status.PROCESSING, Order.Status.CANCELLED},
    Order.Status.PROCESSED: set(),
    Order.Status.CANCELLED: set(),
}
#: A processed order is charged and on its way: it is not cancelled but returned.
CANCELLABLE = {Order.Status.PENDING, Order.Status.PROCESSING, Order.Status.AWAITING_PAYMENT, Order.Status.FAILED}
#: Statuses in which an order holds no stock: moving into one gives its reservation back.
RELEASING = {Order.Status.FAILED, Order.Status.CANCELLED}

PROCESS_ORDER = actor_named("process_order")
REVERSE_PAYMENT = actor_named("reverse_payment")
PROCESS_PAYMENT = actor_named("process_payment")


@dataclass
class QueueOutcome:
    """What a queueing service did: the ids it queued, and why it left each other one alone."""

    queued: list[int] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)


def order_transition(order: Order, status: str, *, reason: str = "") -> None:
    """Move a locked order to ``status``; a move the state machine does not allow raises InvalidTransition.

    Runs inside the caller's transaction. An order that ends failed or cancelled gives back the
    stock it holds, in the same transaction, so the status and the stock cannot disagree.
    """
    if status not in TRANSITIONS[order.status]:
        raise InvalidTransition(f"order {order.pk} cannot go from {order.status} to {status}")
    order.status = status
    if reason:
        order.failure_reason = reason
    if status in RELEASING:
        stock_release(order=order, note=f"order {order.pk} {status}")


def order_queue_processing(*, order_ids: list[int]) -> int:
    """Queue these orders for processing (see ``order_queue_processing_outcome``); returns how many."""
    return len(order_queue_processing_outcome(order_ids=order_ids).queued)


def order_queue_processing_outcome(*, order_ids: list[int]) -> QueueOutcome:
    """Mark orders as processing and enqueue them after commit; says which were skipped and why.

    Pending orders go, and failed orders that never reached a payment (they failed for stock:
    after a restock they reserve again). Priority customers' orders go to the urgent queue.
    Other orders are left alone, so a double click queues nothing twice.
    """
    outcome = QueueOutcome()
    with transaction.atomic():
        orders = Order.objects.select_for_update().select_related("customer").filter(pk__in=order_ids).order_by("pk")
        for order in orders:
            if order.status == Order.Status.FAILED and order.payments.exists():
                outcome.skipped[order.pk] = "its payment failed: use Retry failed payments"
                continue
            if order.status not in (Order.Status.PENDING, Order.Status.FAILED):
                outcome.skipped[order.pk] = f"it is {order.get_status_display().lower()} already"
                continue
            order_transition(order, Order.Status.PROCESSING)
            order.failure_reason = ""
            order.save(update_fields=["status", "failure_reason"])
            queue = queues.URGENT if order.customer.is_priority else None
            enqueue_on_commit(PROCESS_ORDER, order.pk, queue=queue)
            outcome.queued.append(order.pk)
    return outcome


def order_cancel(*, order_ids: list[int]) -> QueueOutcome:
    """Cancel orders that have not shipped: stock back, payments reversed, customers told.

    In one transaction per call: each order is cancelled (releasing its stock), a payment that
    may still take money is marked voided at once, so its charge job charges nothing, and is
    reversed at the gateway after commit (voided, or refunded if it was charged meanwhile).
    Orders already cancelled or processed are named with the reason.
    """
    outcome = QueueOutcome()
    with transaction.atomic():
        # Payments before orders, as the payment jobs lock them, so that the two cannot deadlock.
        list(Payment.objects.select_for_update().filter(order_id__in=order_ids).order_by("pk"))
        for order in (
            Order.objects.select_for_update().select_related("customer").filter(pk__in=order_ids).order_by("pk")
        ):
            if order.status not in CANCELLABLE:
                outcome.skipped[order.pk] = f"it is {order.get_status_display().lower()} already"
                continue
            order_transition(order, Order.Status.CANCELLED)
            order.save(update_fields=["status"])
            for payment in order.payments.select_for_update().filter(
                status__in=[Payment.Status.PENDING, Payment.Status.FAILED]
            ):
                if payment.status == Payment.Status.PENDING:
                    payment.status = Payment.Status.VOIDED
                    payment.save(update_fields=["status", "updated_at"])
                enqueue_on_commit(REVERSE_PAYMENT, payment.pk)
            customer_mail(
                order,
                key=f"order-cancelled:{order.pk}",
                subject=f"Your order #{order.pk} is cancelled",
                text=f"order #{order.pk} is cancelled. Nothing will be charged for it, and anything already "
                "taken is refunded.",
            )
            outcome.queued.append(order.pk)
    return outcome


def order_process(*, order_id: int) -> Order:
    """Reserve stock for every item, create the payment and queue its charge, all or nothing.

    Running it again, or twice at once, does nothing more: the order row is locked and only a
    pending or processing order moves on. Out of stock fails the order with the reason, leaves
    stock untouched and tells the customer.
    """
    with transaction.atomic():
        order = Order.objects.select_for_update().select_related("customer").get(pk=order_id)
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
            customer_mail(
                order,
                key=f"order-out-of-stock:{order.pk}",
                subject=f"Your order #{order.pk} is waiting for stock",
                text=f"some items of order #{order.pk} are out of stock, so nothing has been charged. We will "
                "process it again once they are back.",
            )
            return order
        payment = Payment.objects.create(
            order=order,
            amount=order.total,
            method_token=order.payment_method_token,
            # Only an order that never reached a payment is processed, so this is its first.
            idempotency_key=f"order-{order.pk}-payment",
        )
        order_transition(order, Order.Status.AWAITING_PAYMENT)
        order.save(update_fields=["status", "total"])
        enqueue_on_commit(PROCESS_PAYMENT, payment.pk)
    return order


def payment_key(*, order: Order) -> str:
    """The idempotency key of the order's next payment: one per attempt the gateway answered."""
    attempts = order.payments.count()
    return f"order-{order.pk}-payment" + (f"-{attempts + 1}" if attempts else "")
