"""Order, payment, inventory and e-mail actors end to end through the middleware (StubBroker)."""

from __future__ import annotations

import logging
import smtplib
from unittest import mock

import pytest
from django.core import mail
from django.db import OperationalError

from mail.models import Mail
from mail.tasks import send_mail
from orders.models import Order, Payment, Product, SandboxCharge
from orders.services.orders import order_queue_processing
from orders.services.payments import payment_fail, payment_queue_retry
from orders.tasks import process_order, process_payment, update_inventory
from tests.orders.factories import make_customer, make_order, make_product
from workers.models import DeadLetter

pytestmark = pytest.mark.django_db


def place_and_process(perform_jobs, django_capture_on_commit_callbacks, *, token: str = "tok_ok", stock: int = 5):
    product = make_product(stock=stock)
    order = make_order(items=[(product, 2)], token=token, customer=make_customer(email="buyer@example.com"))
    with django_capture_on_commit_callbacks(execute=True):
        order_queue_processing(order_ids=[order.pk])
    perform_jobs()
    order.refresh_from_db()
    product.refresh_from_db()
    return order, product


def test_an_order_is_reserved_charged_and_confirmed(perform_jobs, django_capture_on_commit_callbacks):
    order, product = place_and_process(perform_jobs, django_capture_on_commit_callbacks)
    assert order.status == Order.Status.PROCESSED and order.processed_at is not None
    assert product.stock == 3
    payment = order.payments.get()
    assert (payment.status, payment.attempts) == (Payment.Status.CHARGED, 1)
    assert payment.gateway_reference.startswith("sbx_")
    assert [(m.to, m.subject) for m in mail.outbox] == [(["buyer@example.com"], f"Your order #{order.pk} is confirmed")]
    assert Mail.objects.get().status == Mail.Status.SENT


def test_an_order_delivered_twice_reserves_charges_and_mails_once(
    jobs, perform_jobs, django_capture_on_commit_callbacks
):
    product = make_product(stock=5)
    order = make_order(items=[(product, 2)])
    process_order.send(order.pk)
    process_order.send(order.pk)
    perform_jobs()
    product.refresh_from_db()
    assert product.stock == 3
    assert SandboxCharge.objects.filter(charged=True).count() == 1
    assert len(mail.outbox) == 1


def test_insufficient_funds_fails_the_order_mails_the_customer_and_does_not_retry(
    perform_jobs, django_capture_on_commit_callbacks
):
    order, _ = place_and_process(perform_jobs, django_capture_on_commit_callbacks, token="tok_insufficient_funds")
    payment = order.payments.get()
    assert payment.status == Payment.Status.INSUFFICIENT_FUNDS
    assert order.status == Order.Status.FAILED
    assert order.failure_reason == "Payment declined: insufficient funds"
    assert SandboxCharge.objects.get().calls == 1
    assert [m.subject for m in mail.outbox] == [f"Payment for order #{order.pk} was declined"]


def test_an_expired_card_sets_the_status_and_discards_the_job(perform_jobs, django_capture_on_commit_callbacks):
    order, _ = place_and_process(perform_jobs, django_capture_on_commit_callbacks, token="tok_expired_card")
    payment = order.payments.get()
    assert payment.status == Payment.Status.CARD_EXPIRED
    assert SandboxCharge.objects.get().calls == 1
    dead = DeadLetter.objects.get(actor_name="process_payment")
    assert (dead.reason, dead.error) == ("discarded", f"CardExpired: payment {payment.pk}: the card has expired")


@pytest.mark.parametrize(("token", "calls"), [("tok_unavailable_2", 3), ("tok_timeout", 2)])
def test_transient_gateway_errors_are_retried_and_charge_exactly_once(
    perform_jobs, django_capture_on_commit_callbacks, caplog, token, calls
):
    caplog.set_level(logging.INFO)
    order, _ = place_and_process(perform_jobs, django_capture_on_commit_callbacks, token=token)
    payment = order.payments.get()
    assert order.status == Order.Status.PROCESSED
    assert (payment.status, payment.attempts) == (Payment.Status.CHARGED, calls)
    ledger = SandboxCharge.objects.get()
    assert (ledger.calls, ledger.charged) == (calls, True)
    assert len([r for r in caplog.records if r.getMessage().startswith("Retrying message")]) == calls - 1


def test_exhausted_payment_retries_fail_the_order_and_alert_staff(
    perform_jobs, django_capture_on_commit_callbacks, settings
):
    settings.STAFF_ALERT_EMAILS = ["ops@example.com"]
    order, product = place_and_process(perform_jobs, django_capture_on_commit_callbacks, token="tok_down")
    payment = order.payments.get()
    assert (payment.status, payment.attempts) == (Payment.Status.FAILED, 9)
    assert order.status == Order.Status.FAILED
    assert order.failure_reason.startswith("Payment could not be charged: GatewayUnavailable")
    assert [m.to for m in mail.outbox] == [["ops@example.com"]]
    assert DeadLetter.objects.get().reason == "exhausted"

    # And a retry from the admin that fails again alerts staff again
    with django_capture_on_commit_callbacks(execute=True):
        assert payment_queue_retry(order_ids=[order.pk]).queued == [order.pk]
    perform_jobs()
    payment.refresh_from_db()
    assert (payment.status, payment.attempts) == (Payment.Status.FAILED, 18)
    assert [m.subject for m in mail.outbox] == [
        f"Payment #{payment.pk} for order #{order.pk} failed after all retries"
    ] * 2


def test_a_mail_that_cannot_be_sent_is_retried_on_its_schedule_then_marked_failed(
    perform_jobs, django_capture_on_commit_callbacks, caplog
):
    caplog.set_level(logging.INFO)
    with mock.patch("django.core.mail.EmailMessage.send", side_effect=smtplib.SMTPServerDisconnected("gone")):
        place_and_process(perform_jobs, django_capture_on_commit_callbacks)
    delivery = Mail.objects.get()
    assert delivery.status == Mail.Status.FAILED
    assert delivery.error == "SMTPServerDisconnected: gone"
    delays = [
        r.args[2]
        for r in caplog.records
        if r.getMessage().startswith("Retrying message") and "send_mail" in r.getMessage()
    ]
    assert delays == [10_000, 20_000, 30_000, 40_000, 50_000]
    assert any(
        r.getMessage() == f"mail {delivery.pk} failed for good: SMTPServerDisconnected: gone" for r in caplog.records
    )


def test_a_redelivered_mail_job_sends_one_mail(perform_jobs, django_capture_on_commit_callbacks):
    order, _ = place_and_process(perform_jobs, django_capture_on_commit_callbacks)
    send_mail.send(Mail.objects.get().pk)
    perform_jobs()
    assert len(mail.outbox) == 1


def test_twenty_inventory_updates_leave_the_right_stock_and_twenty_audits(perform_jobs):
    product = make_product(stock=0)
    for _ in range(20):
        update_inventory.send(product.pk, 3, "restock")
    perform_jobs()
    product.refresh_from_db()
    assert product.stock == 60
    assert product.audits.count() == 20


@pytest.mark.parametrize(
    ("send", "reason", "error"),
    [
        (lambda p: process_order.send(999_999), "discarded", "DoesNotExist: Order matching query does not exist."),
        (lambda p: process_order.send("abc"), "malformed", "TypeError: order_id must be int, got 'abc'"),
        (lambda p: update_inventory.send(p.pk, "5", "restock"), "malformed", "quantity_change must be int"),
        (lambda p: update_inventory.send(p.pk, -9, "adjustment"), "discarded", "OutOfStock: "),
        (lambda p: update_inventory.send(p.pk, 1, "gift"), "discarded", "InvalidRequest: unknown reason 'gift'"),
        (lambda p: process_payment.send(1, 2), "malformed", "too many positional arguments"),
    ],
)
def test_bad_jobs_are_dead_lettered_after_one_attempt_without_writing_anything(perform_jobs, send, reason, error):
    product = make_product(stock=2)
    send(product)
    assert perform_jobs() == 1
    dead = DeadLetter.objects.get()
    assert dead.reason == reason
    assert error in dead.error
    assert Product.objects.get().stock == 2
    assert not Order.objects.exists()


@pytest.mark.parametrize("items", [1, 5])
def test_processing_an_order_runs_the_same_few_queries_whatever_its_size(jobs, django_assert_max_num_queries, items):
    # Given an order of one or of five products
    order = make_order(items=[(make_product(), 1) for _ in range(items)])
    process_order.send(order.pk)
    # When the job runs (its payment job waits for a commit that the test never makes)
    # 9 statements (one is the outbox row, one numbers the reservation round) and a savepoint
    with django_assert_max_num_queries(11):
        assert jobs.drain() == 1
    # Then the order moved on
    order.refresh_from_db()
    assert order.status == Order.Status.AWAITING_PAYMENT


def test_an_illegal_order_transition_is_dead_lettered_at_once_not_retried(
    jobs, perform_jobs, django_capture_on_commit_callbacks
):
    # Given an order cancelled by hand after it was processed, while its payment job waits
    order = make_order(items=[(make_product(stock=5), 2)])
    process_order.send(order.pk)
    with django_capture_on_commit_callbacks() as at_commit:
        jobs.drain()
    Order.objects.filter(pk=order.pk).update(status=Order.Status.CANCELLED)
    for callback in at_commit:
        callback()

    # When the payment job runs
    perform_jobs()

    # Then it ran once and was discarded into the dead letters, naming the refused move
    dead = DeadLetter.objects.get(actor_name="process_payment")
    assert (dead.reason, dead.attempts) == ("discarded", 1)
    assert dead.error == f"InvalidTransition: order {order.pk} cannot go from cancelled to paid"
    assert order.payments.get().status == Payment.Status.PENDING


def test_an_outcome_the_gateway_should_not_give_is_dead_lettered_at_once_and_settles_nothing(
    perform_jobs, django_capture_on_commit_callbacks
):
    # Given a gateway that answers with an outcome this code does not know
    with mock.patch("orders.gateway.SandboxGateway._decide", return_value="held_for_review"):
        order, _ = place_and_process(perform_jobs, django_capture_on_commit_callbacks)

    # Then the payment job ran once, was discarded, and the payment waits for a person
    dead = DeadLetter.objects.get(actor_name="process_payment")
    assert (dead.reason, dead.attempts) == ("discarded", 1)
    assert dead.error.startswith("UnknownGatewayOutcome: the gateway answered 'held_for_review'")
    assert (order.status, order.payments.get().status) == (Order.Status.AWAITING_PAYMENT, Payment.Status.PENDING)
    assert mail.outbox == []


def test_a_payment_failure_callback_that_meets_a_database_blip_runs_again_and_alerts_staff_once(
    perform_jobs, django_capture_on_commit_callbacks, settings
):
    # Given a payment whose retries run out, and whose failure callback fails once
    settings.STAFF_ALERT_EMAILS = ["ops@example.com"]
    failures = [OperationalError("database is locked")]

    def payment_fail_after_a_blip(**kwargs):
        if failures:
            raise failures.pop()
        return payment_fail(**kwargs)

    with mock.patch("orders.tasks.payment_fail", side_effect=payment_fail_after_a_blip):
        order, _ = place_and_process(perform_jobs, django_capture_on_commit_callbacks, token="tok_down")

    # Then the callback ran again on its own schedule: the order failed and staff heard once
    assert failures == []
    assert order.status == Order.Status.FAILED
    assert order.payments.get().status == Payment.Status.FAILED
    assert [m.to for m in mail.outbox] == [["ops@example.com"]]


def test_a_payment_job_sent_with_keyword_arguments_fails_its_order_when_retries_run_out(perform_jobs, settings):
    # Given a payment whose job is sent with its argument by name, while the gateway is down
    settings.STAFF_ALERT_EMAILS = ["ops@example.com"]
    order = make_order(items=[(make_product(), 1)], token="tok_down", status=Order.Status.AWAITING_PAYMENT)
    payment = Payment.objects.create(order=order, amount=10, method_token="tok_down", idempotency_key="kw-1")
    process_payment.send(payment_id=payment.pk)

    # When its retries run out
    perform_jobs()

    # Then its failure callback found the payment by name: the order failed and staff were alerted
    payment.refresh_from_db()
    order.refresh_from_db()
    assert (payment.status, payment.attempts) == (Payment.Status.FAILED, 9)
    assert (
        order.failure_reason == "Payment could not be charged: GatewayUnavailable: sandbox gateway: connection refused"
    )
    assert [m.to for m in mail.outbox] == [["ops@example.com"]]
