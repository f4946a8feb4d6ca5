"""Orders through real workers and Redis: concurrency, redelivery, and enqueue after commit."""

from __future__ import annotations

import pytest
from django.db import transaction
from dramatiq.common import dq_name

from mail import tasks as mail_tasks
from mail.models import Mail
from orders import tasks
from orders.models import InventoryAudit, Order, Product, SandboxCharge
from orders.services.orders import order_queue_processing
from tests.orders.factories import make_order, make_product
from tests.support import tasks as support_tasks
from workers import queues
from workers.dramatiq_internals.keys import messages_key
from workers.models import DeadLetter
from workers.testing import wait_until

pytestmark = pytest.mark.delivery


def test_twenty_concurrent_inventory_updates_on_one_product_are_all_counted(start_worker, redis_broker, redis_url):
    # Given one product and two worker processes of eight threads each
    product = make_product(stock=100)
    start_worker(redis_url=redis_url, processes=2, threads=8)

    # When twenty adjustments of it arrive at once
    changes = [5, -3] * 10
    for change in changes:
        redis_broker.enqueue(tasks.update_inventory.message(product.pk, change, "adjustment"))

    # Then every one is applied exactly once, with its audit
    wait_until(lambda: InventoryAudit.objects.count() == 20, timeout=60, what="twenty audits")
    product.refresh_from_db()
    assert product.stock == 100 + sum(changes)
    assert sorted(InventoryAudit.objects.values_list("change", flat=True)) == sorted(changes)
    assert not DeadLetter.objects.exists()


def test_an_order_delivered_twice_at_once_reserves_charges_and_mails_once(start_worker, redis_broker, redis_url):
    product = make_product(stock=10)
    order = make_order(items=[(product, 3)])
    worker = start_worker(redis_url=redis_url, processes=2, threads=8)

    for _ in range(2):
        redis_broker.enqueue(tasks.process_order.message(order.pk))

    wait_until(lambda: Mail.objects.filter(status="sent").exists(), timeout=60, what="the confirmation mail")

    # Once both deliveries have finished and nothing they queued waits or runs, a second effect would show
    def settled() -> bool:
        held = [name for queue in queues.names() for name in (queue, dq_name(queue))]
        finished = len(worker.log_lines(r"job finished actor=process_order"))
        return finished == 2 and not any(redis_broker.client.hlen(messages_key(redis_broker, name)) for name in held)

    wait_until(settled, timeout=60, what="both deliveries and the jobs they queued")
    order.refresh_from_db()
    product.refresh_from_db()
    assert order.status == Order.Status.PROCESSED
    assert product.stock == 7
    assert SandboxCharge.objects.get().charged and order.payments.count() == 1
    assert len(worker.log_lines(rf"Subject: Your order #{order.pk} is confirmed")) == 1
    assert len(worker.log_lines(r"job finished actor=process_order")) == 2


def test_a_worker_never_sees_an_order_before_its_transaction_commits(
    start_worker, redis_broker, redis_url, monkeypatch
):
    # Given a running worker, and actors that send to its Redis
    worker = start_worker(redis_url=redis_url)
    for actor in (tasks.process_order, tasks.process_payment, mail_tasks.send_mail):
        monkeypatch.setattr(actor, "broker", redis_broker)
    product = make_product(stock=5)

    # When an order is created and queued in a transaction that commits only once a job sent
    # meanwhile has run: one sent before the commit would have reached the worker by then
    with transaction.atomic():
        order = make_order(items=[(product, 1)])
        order_queue_processing(order_ids=[order.pk])
        redis_broker.enqueue(support_tasks.noop.message("probe"))
        wait_until(lambda: support_tasks.recorded("probe"), timeout=30, what="a job sent inside the transaction")

    # Then the worker processes it after the commit, and never met a missing row
    wait_until(lambda: Order.objects.get(pk=order.pk).status == "processed", timeout=30, what="the order processed")
    assert not DeadLetter.objects.exists()
    assert worker.log_lines(r"DoesNotExist") == []
    assert Product.objects.get(pk=product.pk).stock == 4
