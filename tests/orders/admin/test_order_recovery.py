"""Failed orders from the admin: stock given back once, declined payments retried, out-of-stock orders re-processed."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.core import mail
from django.urls import reverse

from orders.models import InventoryAudit, Order, Payment, SandboxCharge
from orders.services.payments import payment_fail
from orders.tasks import process_payment
from tests.orders.factories import make_customer, make_order, make_product
from tests.support.users import login_staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def run_action(client, django_capture_on_commit_callbacks):
    """Run an admin action on a changelist, and what it queues after commit as the request commits."""

    def run(model: str, action: str, ids: list[int], **extra):
        url = reverse(f"admin:orders_{model}_changelist")
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(url, {"action": action, "_selected_action": ids, **extra}, follow=True)

    return run


def said(response) -> list[tuple[str, str]]:
    return [(message.level_tag, message.message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def clerk(client):
    return login_staff(client, "view_order", "view_product", "process_order", "retry_payment", "adjust_stock")


def place(run_action, perform_jobs, *, token: str, stock: int, quantity: int = 2):
    product = make_product(sku="MUG-1", stock=stock)
    order = make_order(items=[(product, quantity)], token=token, customer=make_customer(email="ada@example.com"))
    run_action("order", "process_orders", [order.pk])
    perform_jobs()
    order.refresh_from_db(), product.refresh_from_db()
    return order, product


def test_a_declined_order_gives_its_stock_back_once(client, clerk, jobs, perform_jobs, run_action):
    # Given an order whose card is declined
    order, product = place(run_action, perform_jobs, token="tok_insufficient_funds", stock=5)

    # Then it failed, the customer was told, and its reservation was released with an audit
    assert order.status == Order.Status.FAILED and product.stock == 5
    assert [m.subject for m in mail.outbox] == [f"Payment for order #{order.pk} was declined"]
    release = InventoryAudit.objects.get(reason=InventoryAudit.Reason.RELEASE)
    assert (release.order_id, release.change, release.stock_after) == (order.pk, 2, 5)

    # When the payment job is delivered again, and the exhaustion callback runs late
    process_payment.send(order.payments.get().pk)
    perform_jobs()
    payment_fail(payment_id=order.payments.get().pk, error="late")

    # Then nothing more is given back: stock equals its start plus its audits
    product.refresh_from_db()
    assert product.stock == 5 and InventoryAudit.objects.filter(reason="release").count() == 1
    assert product.stock == 5 + sum(InventoryAudit.objects.filter(product=product).values_list("change", flat=True))


def test_exhausted_payment_retries_give_the_stock_back(jobs, perform_jobs, client, clerk, run_action):
    order, product = place(run_action, perform_jobs, token="tok_down", stock=5)
    assert order.status == Order.Status.FAILED and order.payments.get().status == Payment.Status.FAILED
    assert product.stock == 5
    assert InventoryAudit.objects.filter(order=order, reason="release").count() == 1


def test_a_declined_payment_is_retried_with_the_card_the_customer_updated(
    client, clerk, jobs, perform_jobs, run_action
):
    # Given a declined order, and the customer's new card saved on it
    order, product = place(run_action, perform_jobs, token="tok_insufficient_funds", stock=5)
    Order.objects.filter(pk=order.pk).update(payment_method_token="tok_ok")

    # When staff retry its payment
    response = run_action("order", "retry_failed_payments", [order.pk])
    perform_jobs()

    # Then the new card is charged once, under a new key, and the declined attempt stays on record
    assert said(response) == [("success", "1 payment(s) queued for another charge.")]
    order.refresh_from_db(), product.refresh_from_db()
    assert order.status == Order.Status.PROCESSED and product.stock == 3
    attempts = list(order.payments.order_by("pk").values_list("status", "method_token", "idempotency_key"))
    assert attempts == [
        ("insufficient_funds", "tok_insufficient_funds", f"order-{order.pk}-payment"),
        ("charged", "tok_ok", f"order-{order.pk}-payment-2"),
    ]
    assert SandboxCharge.objects.filter(charged=True).count() == 1
    assert mail.outbox[-1].subject == f"Your order #{order.pk} is confirmed"
    # And the stock was reserved again for the retry
    assert [a.change for a in InventoryAudit.objects.filter(order=order).order_by("pk")] == [-2, 2, -2]


def test_an_out_of_stock_order_is_processed_again_after_a_restock(client, clerk, jobs, perform_jobs, run_action):
    # Given an order that failed for stock, whose customer was told
    order, product = place(run_action, perform_jobs, token="tok_ok", stock=1)
    assert order.status == Order.Status.FAILED and order.failure_reason.startswith("Out of stock")
    assert [m.subject for m in mail.outbox] == [f"Your order #{order.pk} is waiting for stock"]

    # When staff retry its payment, they are told why not
    response = run_action("order", "retry_failed_payments", [order.pk])
    assert said(response) == [
        (
            "warning",
            f"Not retried: order #{order.pk}: it failed before any payment (out of stock): "
            "use Process selected orders.",
        )
    ]

    # When stock comes back and staff process it again
    run_action("product", "adjust_stock", [product.pk], apply="1", quantity_change=5, reason="restock")
    perform_jobs()
    response = run_action("order", "process_orders", [order.pk])
    perform_jobs()

    # Then it is reserved, charged and confirmed
    assert said(response) == [("success", "1 order(s) queued for processing.")]
    order.refresh_from_db(), product.refresh_from_db()
    assert (order.status, order.failure_reason, product.stock) == (Order.Status.PROCESSED, "", 4)
    assert mail.outbox[-1].subject == f"Your order #{order.pk} is confirmed"


def test_actions_that_do_nothing_warn_and_name_the_orders_skipped(client, clerk, jobs, perform_jobs, run_action):
    done, _ = place(run_action, perform_jobs, token="tok_ok", stock=5)
    declined = make_order(status=Order.Status.FAILED)
    Payment.objects.create(order=declined, amount=10, method_token="t", idempotency_key="k", status="card_expired")

    retried = run_action("order", "retry_failed_payments", [done.pk])
    processed = run_action("order", "process_orders", [done.pk, declined.pk])

    assert said(retried) == [("warning", f"Not retried: order #{done.pk}: it is processed, not failed.")]
    assert said(processed) == [
        (
            "warning",
            f"Not processed: order #{done.pk}: it is processed already; "
            f"order #{declined.pk}: its payment failed: use Retry failed payments.",
        )
    ]
    jobs.assert_nothing_enqueued()


def test_the_order_form_says_which_card_a_retry_charges(client):
    login_staff(client, "view_order", "change_order")
    order = make_order()
    page = client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
    assert "charges the token saved here, as a new attempt" in page
