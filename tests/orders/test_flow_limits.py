"""The shop's flow limits: payments kept under the sandbox gateway's rate, imports one at a time per uploader."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from orders import gateway, tasks
from orders.errors import GatewayRateLimited
from orders.models import Import, Order, Payment, SandboxCharge
from tests.orders.factories import make_import, make_order, products_csv
from workers.models import DeadLetter
from workers.testing import wait_until

pytestmark = pytest.mark.django_db


def awaiting_payment(count: int) -> list[Payment]:
    payments = []
    for _ in range(count):
        order = make_order(status=Order.Status.AWAITING_PAYMENT)
        payments.append(
            Payment.objects.create(
                order=order,
                amount=order.total or 10,
                method_token="tok_ok",
                idempotency_key=f"order-{order.pk}-payment",
            )
        )
    return payments


def test_the_sandbox_answers_rate_limited_past_its_charges_a_second(monkeypatch, redis_client):
    # Given a sandbox counting its charges in Redis, that has charged nothing yet
    monkeypatch.setattr(gateway, "platform_client", lambda broker: redis_client)
    sandbox = gateway.SandboxGateway()

    # When one more than its limit are charged at once
    answers = []
    for number in range(gateway.CHARGES_PER_SECOND + 1):
        try:
            answers.append(sandbox.charge(token="tok_ok", amount=1, idempotency_key=f"key-{number}").outcome)
        except GatewayRateLimited as error:
            answers.append(str(error))

    # Then the last is refused as rate limited, a transient error, and charged nothing
    assert answers[:-1] == [gateway.CHARGED] * gateway.CHARGES_PER_SECOND
    assert "rate limited" in answers[-1]
    assert not SandboxCharge.objects.filter(idempotency_key=f"key-{gateway.CHARGES_PER_SECOND}").exists()


@pytest.mark.delivery
def test_payments_keep_under_the_gateway_rate_and_spend_no_retry(start_worker, redis_broker, redis_url):
    # Given 60 payments waiting and two worker processes of eight threads, able to call far faster than 20 a second
    payments = awaiting_payment(60)
    worker = start_worker(redis_url=redis_url, processes=2, threads=8)

    # When all are sent at once
    for payment in payments:
        redis_broker.enqueue(tasks.process_payment.message(payment.pk))

    # Then every payment is charged at its first attempt: the gateway never answered "rate limited"
    wait_until(
        lambda: Payment.objects.filter(status=Payment.Status.CHARGED).count() == 60, timeout=60, what="60 charges"
    )
    assert set(Payment.objects.values_list("attempts", flat=True)) == {1}
    assert set(SandboxCharge.objects.values_list("calls", flat=True)) == {1}
    assert not worker.log_lines(r"rate limited")
    # And the payments over the limit waited their turn, deferred rather than retried
    assert worker.log_lines(r"Deferred message \S+ of process_payment")
    assert not worker.log_lines(r"Retrying message")
    assert not DeadLetter.objects.exists()


@pytest.mark.delivery
def test_one_uploader_runs_one_import_at_a_time(start_worker, redis_broker, redis_url, media_root):
    # Given three imports uploaded by one user and one by another, and a worker of four threads
    alice, bob = User.objects.create(username="alice"), User.objects.create(username="bob")
    rows = [f"SKU-{number},Mug {number},4.50,10" for number in range(300)]
    imports = [make_import(products_csv(*rows), created_by=alice) for _ in range(3)]
    imports.append(make_import(products_csv(*rows), created_by=bob))
    worker = start_worker(redis_url=redis_url, threads=4, env={"VAR_DIR": str(media_root.parent)})

    # When all four are sent at once
    for product_import in imports:
        redis_broker.enqueue(tasks.import_data.message(product_import.pk))

    # Then all complete, and alice's never ran side by side
    wait_until(
        lambda: Import.objects.filter(status=Import.Status.COMPLETED).count() == 4, timeout=60, what="four imports"
    )
    alices = sorted(Import.objects.filter(created_by=alice).values_list("started_at", "finished_at"))
    assert all(earlier[1] <= later[0] for earlier, later in zip(alices, alices[1:], strict=False)), alices
    assert worker.log_lines(r"Deferred message \S+ of import_data")
    assert not worker.log_lines(r"Retrying message")
    assert not DeadLetter.objects.exists()
