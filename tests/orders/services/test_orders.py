"""Order processing as a state machine: reservation, payment creation, out of stock, routing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import transaction

from mail.models import Mail
from mail.tasks import send_mail
from orders.models import InventoryAudit, Order, Payment
from orders.services.orders import order_process, order_queue_processing
from orders.tasks import process_order, process_payment
from tests.orders.factories import make_customer, make_order, make_product

pytestmark = pytest.mark.django_db


def test_processing_reserves_stock_creates_the_payment_and_queues_its_charge(jobs, django_capture_on_commit_callbacks):
    # Given an order of two products
    mug, tee = make_product(stock=5, price=Decimal("12.50")), make_product(stock=2, price=Decimal("20.00"))
    order = make_order(items=[(mug, 2), (tee, 1)])

    # When it is processed
    with django_capture_on_commit_callbacks(execute=True):
        order_process(order_id=order.pk)

    # Then stock is reserved with one audit per product, and the payment is queued after commit
    order.refresh_from_db()
    assert (order.status, order.total) == (Order.Status.AWAITING_PAYMENT, Decimal("45.00"))
    mug.refresh_from_db(), tee.refresh_from_db()
    assert (mug.stock, tee.stock) == (3, 1)
    assert sorted(InventoryAudit.objects.values_list("change", flat=True)) == [-2, -1]
    payment = Payment.objects.get(order=order)
    assert (payment.amount, payment.status, payment.method_token) == (Decimal("45.00"), "pending", "tok_ok")
    jobs.assert_enqueued(process_payment, payment.pk, queue="urgent", count=1)


def test_processing_twice_has_the_effect_of_processing_once(jobs, django_capture_on_commit_callbacks):
    product = make_product(stock=5)
    order = make_order(items=[(product, 2)])
    with django_capture_on_commit_callbacks(execute=True):
        order_process(order_id=order.pk)
        order_process(order_id=order.pk)
    product.refresh_from_db()
    assert product.stock == 3
    assert Payment.objects.count() == 1
    assert InventoryAudit.objects.count() == 1
    jobs.assert_enqueued(process_payment, count=1)


def test_out_of_stock_fails_the_order_with_the_reason_leaves_stock_alone_and_tells_the_customer(
    jobs, django_capture_on_commit_callbacks
):
    plenty, scarce = make_product(stock=9), make_product(sku="CAP-3", stock=1)
    order = make_order(items=[(plenty, 1), (scarce, 5)])
    with django_capture_on_commit_callbacks(execute=True):
        order_process(order_id=order.pk)
    order.refresh_from_db()
    plenty.refresh_from_db(), scarce.refresh_from_db()
    assert order.status == Order.Status.FAILED
    assert order.failure_reason == "Out of stock: CAP-3 (ordered 5, in stock 1)"
    assert order.total == plenty.price + 5 * scarce.price > 0
    assert (plenty.stock, scarce.stock) == (9, 1)
    assert not Payment.objects.exists() and not InventoryAudit.objects.exists()
    mail = Mail.objects.get()
    assert (mail.key, mail.to) == (f"order-out-of-stock:{order.pk}", [order.customer.email])
    jobs.assert_enqueued(send_mail, mail.pk, count=1)
    jobs.assert_enqueued(process_payment, count=0)


def test_queueing_routes_priority_customers_to_urgent_and_skips_orders_not_pending(
    jobs, django_capture_on_commit_callbacks
):
    vip = make_order(customer=make_customer(is_priority=True))
    regular = make_order()
    done = make_order(status=Order.Status.PROCESSED)
    with django_capture_on_commit_callbacks(execute=True):
        assert order_queue_processing(order_ids=[vip.pk, regular.pk, done.pk]) == 2
        assert order_queue_processing(order_ids=[vip.pk, regular.pk]) == 0
    jobs.assert_enqueued(process_order, vip.pk, queue="urgent", count=1)
    jobs.assert_enqueued(process_order, regular.pk, queue="default", count=1)
    assert len(jobs.enqueued()) == 2


@pytest.mark.django_db(transaction=True)
def test_the_job_is_sent_at_commit_and_never_after_a_rollback(jobs):
    order = make_order()
    # Given a transaction that rolls back: nothing is sent, and the order stays pending
    with transaction.atomic():
        order_queue_processing(order_ids=[order.pk])
        transaction.set_rollback(True)
    jobs.assert_nothing_enqueued()
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING

    # Given one that commits: inside it nothing is on the broker yet (no worker can see a row
    # that does not exist yet); right after the commit the job is there
    with transaction.atomic():
        order_queue_processing(order_ids=[order.pk])
        jobs.assert_nothing_enqueued()
    jobs.assert_enqueued(process_order, order.pk, count=1)
