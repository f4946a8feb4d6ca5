"""The outbox: a job commits with its data, reaches the broker after, and survives a broker outage."""

from __future__ import annotations

import logging
from datetime import timedelta
from unittest import mock

import pytest
from django.db import transaction
from dramatiq.brokers.redis import RedisBroker

from tests.support import tasks
from workers import queues
from workers.enqueue import enqueue_on_commit
from workers.models import OutboxMessage
from workers.outbox import outbox_relay
from workers.testing import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_job_waits_in_the_outbox_until_commit_then_leaves_it(jobs):
    with transaction.atomic():
        enqueue_on_commit(tasks.noop, "k")
        assert OutboxMessage.objects.count() == 1
        jobs.assert_nothing_enqueued()
    jobs.assert_enqueued(tasks.noop, "k", count=1)
    assert not OutboxMessage.objects.exists()


def test_a_rollback_leaves_neither_a_job_nor_a_row(jobs):
    with transaction.atomic():
        enqueue_on_commit(tasks.noop, "k")
        transaction.set_rollback(True)
    jobs.assert_nothing_enqueued()
    assert not OutboxMessage.objects.exists()


def test_a_job_the_broker_refused_at_commit_is_sent_by_the_relay(jobs, caplog):
    # Given a broker that is down when the transaction commits
    with mock.patch.object(jobs.broker, "enqueue", side_effect=ConnectionError("broker down")):
        with transaction.atomic():
            enqueue_on_commit(tasks.noop, "k", queue="urgent")
    # Then the job is kept, and the failure said so
    assert OutboxMessage.objects.count() == 1
    jobs.assert_nothing_enqueued()
    assert "the relay will send them" in caplog.text

    # When the broker is back and the relay runs
    assert outbox_relay(older_than=timedelta(0)) == 1

    # Then the job is on its queue, once, and the outbox is empty
    jobs.assert_enqueued(tasks.noop, "k", queue="urgent", count=1)
    assert not OutboxMessage.objects.exists()


def test_the_relay_leaves_young_rows_to_the_process_that_wrote_them(jobs):
    with mock.patch.object(jobs.broker, "enqueue", side_effect=ConnectionError("broker down")):
        with transaction.atomic():
            enqueue_on_commit(tasks.noop, "k")
    assert outbox_relay() == 0
    assert OutboxMessage.objects.count() == 1


@pytest.mark.delivery
def test_a_job_committed_while_redis_is_down_runs_once_redis_is_back(
    private_redis, start_worker, settings, monkeypatch, caplog
):
    # Given a worker, and actors that send to its Redis
    settings.REDIS_URL = private_redis.url
    broker = RedisBroker(url=private_redis.url, middleware=[])
    for name in queues.names():
        broker.declare_queue(name)
    monkeypatch.setattr(tasks.noop, "broker", broker)
    start_worker(redis_url=private_redis.url)

    # When Redis is down as a transaction commits a job
    caplog.set_level(logging.WARNING)
    private_redis.stop()
    with transaction.atomic():
        enqueue_on_commit(tasks.noop, "outage")
    assert OutboxMessage.objects.count() == 1

    # And Redis comes back and the relay runs
    private_redis.start()
    assert outbox_relay(older_than=timedelta(0), broker=broker) == 1

    # Then the job ran, once
    wait_until(lambda: len(tasks.recorded("outage")) == 1, timeout=30, what="the job sent by the relay")
    assert not OutboxMessage.objects.exists()
    broker.close()
