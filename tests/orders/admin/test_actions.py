"""Admin actions queue jobs after commit, say how many, and need their own permission."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from orders.models import Order, Payment, StockAdjustment
from orders.tasks import adjust_stock, process_order, process_payment
from tests.orders.factories import make_order, make_product
from tests.support.users import login_staff

pytestmark = pytest.mark.django_db


def staff(client, *codenames: str) -> User:
    return login_staff(client, "view_order", "view_product", *codenames)


def run_action(client, model: str, action: str, ids: list[int], **extra):
    url = reverse(f"admin:orders_{model}_changelist")
    return client.post(url, {"action": action, "_selected_action": ids, **extra}, follow=True)


def test_process_selected_orders_queues_them_and_says_how_many(client, jobs, django_capture_on_commit_callbacks):
    staff(client, "process_order")
    first, second = make_order(), make_order()
    assert 'value="process_orders"' in client.get(reverse("admin:orders_order_changelist")).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = run_action(client, "order", "process_orders", [first.pk, second.pk])
    assert "2 order(s) queued for processing." in response.content.decode()
    assert {job.args for job in jobs.enqueued(process_order)} == {(first.pk,), (second.pk,)}


def test_without_the_permission_the_action_is_refused_and_nothing_is_queued(client, jobs):
    staff(client)
    order = make_order()
    response = run_action(client, "order", "process_orders", [order.pk])
    assert response.status_code == 200
    assert 'value="process_orders"' not in response.content.decode()
    jobs.assert_nothing_enqueued()
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING


def test_retry_failed_payments_queues_only_failed_ones(client, jobs, django_capture_on_commit_callbacks):
    staff(client, "retry_payment")
    failed = make_order(status=Order.Status.FAILED)
    payment = Payment.objects.create(
        order=failed, amount=10, method_token="tok_ok", idempotency_key="k", status=Payment.Status.FAILED
    )
    charged = make_order(status=Order.Status.PROCESSED)
    Payment.objects.create(order=charged, amount=10, method_token="tok_ok", idempotency_key="k2", status="charged")
    with django_capture_on_commit_callbacks(execute=True):
        response = run_action(client, "order", "retry_failed_payments", [failed.pk, charged.pk])
    assert "1 payment(s) queued for another charge." in response.content.decode()
    jobs.assert_enqueued(process_payment, payment.pk, count=1)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING


def test_stock_adjustment_asks_for_the_change_then_queues_it(client, jobs, django_capture_on_commit_callbacks):
    staff(client, "adjust_stock")
    product = make_product(stock=3)
    form = run_action(client, "product", "adjust_stock", [product.pk])
    assert "Queue adjustment" in form.content.decode()
    invalid = run_action(
        client, "product", "adjust_stock", [product.pk], apply="1", quantity_change=0, reason="restock"
    )
    assert "A change of zero changes nothing." in invalid.content.decode()
    jobs.assert_nothing_enqueued()
    with django_capture_on_commit_callbacks(execute=True):
        done = run_action(
            client, "product", "adjust_stock", [product.pk], apply="1", quantity_change=5, reason="restock"
        )
    assert "1 stock adjustment(s) queued; each product&#x27;s page shows whether it was done." in done.content.decode()
    jobs.assert_enqueued(adjust_stock, StockAdjustment.objects.get(product=product, change=5).pk, count=1)


def test_a_stock_adjustment_that_would_go_below_zero_is_refused_naming_the_products(client, jobs):
    staff(client, "adjust_stock")
    low, high = make_product(sku="MUG-1", stock=3), make_product(sku="LAMP-1", stock=50)
    refused = run_action(
        client, "product", "adjust_stock", [low.pk, high.pk], apply="1", quantity_change=-10, reason="adjustment"
    )
    assert "Not enough stock to remove 10 from MUG-1 (3)." in refused.content.decode()
    jobs.assert_nothing_enqueued()


def test_stock_adjustment_needs_its_permission(client, jobs):
    staff(client)
    product = make_product()
    run_action(client, "product", "adjust_stock", [product.pk], apply="1", quantity_change=5, reason="restock")
    jobs.assert_nothing_enqueued()
