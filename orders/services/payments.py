"""Payments: charge through the gateway at most once, and settle the order by the outcome."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from mail.services import queue_mail
from orders import gateway as payment_gateway
from orders.errors import CardExpired, UnknownGatewayOutcome
from orders.models import Order, Payment
from orders.services.emails import customer_mail
from orders.services.inventory import stock_reserve
from orders.services.orders import QueueOutcome, order_transition, payment_key
from workers.enqueue import actor_named, enqueue_on_commit

DECLINES = {
    payment_gateway.INSUFFICIENT_FUNDS: Payment.Status.INSUFFICIENT_FUNDS,
    payment_gateway.CARD_EXPIRED: Payment.Status.CARD_EXPIRED,
}

PROCESS_PAYMENT = actor_named("process_payment")


def payment_charge(*, payment_id: int) -> Payment:
    """Charge a pending payment and settle its order.

    The gateway call happens outside any transaction (no row lock is held over the network);
    the payment's idempotency key makes a repeated or concurrent call charge once. Transient
    gateway errors propagate so the job is retried; an insufficient-funds decline fails the
    order and mails the customer; an expired card does the same and raises CardExpired so the
    job is discarded. An outcome it does not know raises UnknownGatewayOutcome before anything
    is settled: the job is discarded and the payment stays pending for a person to look at.
    A key voided by a cancellation charges nothing, and the payment is marked voided.
    """
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        if payment.status != Payment.Status.PENDING:
            return payment
        payment.attempts += 1
        payment.save(update_fields=["attempts", "updated_at"])

    result = payment_gateway.gateway().charge(
        token=payment.method_token, amount=payment.amount, idempotency_key=payment.idempotency_key
    )
    if result.outcome not in (payment_gateway.CHARGED, payment_gateway.VOIDED) and result.outcome not in DECLINES:
        raise UnknownGatewayOutcome(f"payment {payment.pk}: the gateway answered {result.outcome!r}")

    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        # A payment whose order was cancelled meanwhile is settled by its reversal, not here.
        if payment.status != Payment.Status.PENDING:
            return payment
        if result.outcome == payment_gateway.VOIDED:
            payment.status = Payment.Status.VOIDED
            payment.save(update_fields=["status", "updated_at"])
            return payment
        order = Order.objects.select_for_update().select_related("customer").get(pk=payment.order_id)
        if result.outcome == payment_gateway.CHARGED:
            payment.status = Payment.Status.CHARGED
            payment.gateway_reference = result.reference
            order_transition(order, Order.Status.PAID)
            order_transition(order, Order.Status.PROCESSED)
            order.processed_at = timezone.now()
            customer_mail(
                order,
                key=f"order-confirmed:{order.pk}",
                subject=f"Your order #{order.pk} is confirmed",
                text=f"we received your payment of {payment.amount} for order #{order.pk}. It is on its way.",
            )
        else:
            payment.status = DECLINES[result.outcome]
            payment.failure_code = result.outcome
            order_transition(order, Order.Status.FAILED, reason=f"Payment declined: {result.outcome.replace('_', ' ')}")
            customer_mail(
                order,
                key=f"payment-declined:{payment.pk}",
                subject=f"Payment for order #{order.pk} was declined",
                text=f"your payment for order #{order.pk} was declined ({result.outcome.replace('_', ' ')}). "
                "Please update your payment method.",
            )
        payment.save(update_fields=["status", "gateway_reference", "failure_code", "updated_at"])
        order.save(update_fields=["status", "processed_at", "failure_reason"])

    if result.outcome == payment_gateway.CARD_EXPIRED:
        raise CardExpired(f"payment {payment.pk}: the card has expired")
    return payment


def payment_fail(*, payment_id: int, error: str) -> Payment:
    """Give up on a payment whose retries ran out: fail it and its order, and alert staff."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        if payment.status != Payment.Status.PENDING:
            return payment
        order = Order.objects.select_for_update().get(pk=payment.order_id)
        payment.status = Payment.Status.FAILED
        payment.failure_code = "gateway_error"
        payment.save(update_fields=["status", "failure_code", "updated_at"])
        order_transition(order, Order.Status.FAILED, reason=f"Payment could not be charged: {error}")
        order.save(update_fields=["status", "failure_reason"])
        for address in settings.STAFF_ALERT_EMAILS:
            queue_mail(
                # One alert per round of retries: a retry from the admin that fails again alerts again.
                key=f"payment-failed-alert:{payment.pk}:{payment.attempts}:{address}",
                to=[address],
                subject=f"Payment #{payment.pk} for order #{order.pk} failed after all retries",
                body=f"Payment #{payment.pk} (order #{order.pk}) could not be charged: {error}.\n"
                "Use 'Retry failed payments' in the admin once the gateway is back.\n",
            )
    return payment


def payment_queue_retry(*, order_ids: list[int]) -> QueueOutcome:
    """Charge failed orders again, after commit; says which orders were skipped and why.

    A declined payment stays as the record of that attempt and a new payment charges the token
    now on the order (the customer may have updated it) under a new idempotency key, after the
    order has reserved its stock again. A payment whose outcome is unknown (retries exhausted) is
    charged again as it was, same token and same key: if the gateway did charge before failing
    to answer, the retry finds that charge instead of making a second one.
    """
    outcome = QueueOutcome()
    with transaction.atomic():
        # Payments before orders, as the payment jobs lock them, so that the two cannot deadlock.
        list(Payment.objects.select_for_update().filter(order_id__in=order_ids).order_by("pk"))
        for order in Order.objects.select_for_update().filter(pk__in=order_ids).order_by("pk"):
            payment = order.payments.order_by("-pk").first()
            if order.status != Order.Status.FAILED:
                outcome.skipped[order.pk] = f"it is {order.get_status_display().lower()}, not failed"
                continue
            if payment is None:
                outcome.skipped[order.pk] = "it failed before any payment (out of stock): use Process selected orders"
                continue
            shortages = stock_reserve(order=order, items=list(order.items.all()))
            if shortages:
                outcome.skipped[order.pk] = "out of stock: " + "; ".join(shortages)
                continue
            if payment.status != Payment.Status.FAILED:
                payment = Payment.objects.create(
                    order=order,
                    amount=order.total,
                    method_token=order.payment_method_token,
                    idempotency_key=payment_key(order=order),
                )
            else:
                payment.status = Payment.Status.PENDING
                payment.failure_code = ""
                payment.save(update_fields=["status", "failure_code", "updated_at"])
            order_transition(order, Order.Status.AWAITING_PAYMENT)
            order.failure_reason = ""
            order.save(update_fields=["status", "failure_reason"])
            enqueue_on_commit(PROCESS_PAYMENT, payment.pk)
            outcome.queued.append(order.pk)
    return outcome


def payment_reverse(*, payment_id: int) -> Payment:
    """Give back what a cancelled order's payment took, or make sure it never takes anything.

    The gateway call happens outside any transaction; reversing a key twice answers the same,
    so a redelivered job refunds nothing twice. A charge still in flight either finds its key
    voided and charges nothing, or charged first and is refunded here.
    """
    payment = Payment.objects.get(pk=payment_id)
    answer = payment_gateway.gateway().reverse(idempotency_key=payment.idempotency_key)
    if answer not in payment_gateway.REVERSALS:
        raise UnknownGatewayOutcome(f"payment {payment.pk}: the gateway answered {answer!r} to a reversal")
    status = Payment.Status.REFUNDED if answer == payment_gateway.REFUNDED else Payment.Status.VOIDED
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        payment.status = status
        payment.save(update_fields=["status", "updated_at"])
    return payment
