"""Cancelling orders from the admin: stock back, payment voided or refunded once, customer told; never deleted."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.core import mail
from django.urls import reverse

from orders.gateway import gateway
from orders.models import InventoryAudit, Order, Payment, SandboxCharge
from orders.services.payments import payment_charge, payment_reverse
from orders.tasks import process_order, reverse_payment
from tests.orders.factories import make_customer, make_order, make_product
from tests.support.users import login_staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def clerk(client):
    return login_staff(client, "view_order", "process_order", "cancel_order", "delete_order")


@pytest.fixture
def cancel(client, django_capture_on_commit_callbacks):
    def run(*orders: Order):
        url = reverse("admin:orders_order_changelist")
        data = {"action": "cancel_orders", "_selected_action": [order.pk for order in orders]}
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(url, data, follow=True)
        return [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)]

    return run


def awaiting_payment(jobs, *, stock: int = 5) -> tuple[Order, Payment]:
    """An order reserved with its payment created, whose charge job has not run yet."""
    product = make_product(stock=stock)
    order = make_order(items=[(product, 2)], customer=make_customer(email="ada@example.com"))
    process_order.send(order.pk)
    jobs.drain()
    order.refresh_from_db()
    return order, order.payments.get()


def test_cancelling_an_order_awaiting_payment_releases_stock_voids_the_payment_and_tells_the_customer(
    clerk, cancel, jobs, perform_jobs
):
    # Given an order whose charge job is still queued
    order, payment = awaiting_payment(jobs)
    product = order.items.get().product

    # When staff cancel it, and every job runs (the charge job among them)
    said = cancel(order)
    perform_jobs()
    payment_charge(payment_id=payment.pk)

    # Then the order is cancelled, its stock is back, nothing was charged, and the customer was told once
    assert said == [("success", "1 order(s) cancelled: stock released, payments reversed, customers told.")]
    order.refresh_from_db(), payment.refresh_from_db(), product.refresh_from_db()
    assert (order.status, payment.status, product.stock) == (Order.Status.CANCELLED, Payment.Status.VOIDED, 5)
    assert InventoryAudit.objects.filter(order=order, reason="release").count() == 1
    assert not SandboxCharge.objects.filter(charged=True).exists()
    assert [m.subject for m in mail.outbox] == [f"Your order #{order.pk} is cancelled"]


def test_a_charge_that_went_through_while_the_order_was_cancelled_is_refunded_once(clerk, cancel, jobs, perform_jobs):
    # Given an order whose charge reached the gateway just as staff cancelled it
    order, payment = awaiting_payment(jobs)
    gateway().charge(token="tok_ok", amount=payment.amount, idempotency_key=payment.idempotency_key)

    # When it is cancelled and its reversal job runs twice
    cancel(order)
    perform_jobs()
    reverse_payment.send(payment.pk)
    perform_jobs()

    # Then the money is given back once, and the payment says so
    payment.refresh_from_db()
    assert payment.status == Payment.Status.REFUNDED
    ledger = SandboxCharge.objects.get()
    assert (ledger.charged, ledger.refunded) == (False, True)
    assert payment_reverse(payment_id=payment.pk).status == Payment.Status.REFUNDED


def test_a_failed_order_can_be_cancelled_and_a_processed_one_cannot(clerk, cancel, jobs, perform_jobs):
    failed = make_order(status=Order.Status.FAILED)
    done = make_order(status=Order.Status.PROCESSED)

    said = cancel(failed, done)

    assert said == [
        ("success", "1 order(s) cancelled: stock released, payments reversed, customers told."),
        ("warning", f"Not cancelled: order #{done.pk}: it is processed already."),
    ]
    failed.refresh_from_db(), done.refresh_from_db()
    assert (failed.status, done.status) == (Order.Status.CANCELLED, Order.Status.PROCESSED)


def test_orders_cannot_be_deleted_even_by_a_superuser_who_is_offered_cancel_instead(client):
    # Given a superuser and an order
    client.force_login(User.objects.create_superuser("boss", password="pw"))
    order = make_order()
    delete_url = reverse("admin:orders_order_delete", args=[order.pk])

    # When they open the order and the list, and try the delete page anyway
    page = client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
    listing = client.get(reverse("admin:orders_order_changelist")).content.decode()
    response = client.post(delete_url, {"post": "yes"})

    # Then no delete is offered or done, and cancelling is offered
    assert delete_url not in page and 'value="delete_selected"' not in listing
    assert response.status_code == 403 and Order.objects.filter(pk=order.pk).exists()
    assert 'value="cancel_orders"' in listing
