"""The outbox: a job commits with its data, reaches the broker after, and survives a broker outage."""

from __future__ import annotations

import logging
from datetime import timedelta
from unittest import mock

import dramatiq
import pytest
from django.db import OperationalError, connections, transaction
from dramatiq.brokers.redis import RedisBroker

from tests.support import tasks
from workers import dead_letters, outbox, queues
from workers.bulk import enqueue_many
from workers.enqueue import enqueue_on_commit
from workers.middleware.message_size import MessageSizeLimit, MessageTooLarge
from workers.models import DeadLetter, OutboxMessage
from workers.outbox import _as_json, outbox_relay
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


@pytest.fixture
def size_limit():
    """The broker's message size limit, lowered to 1 KiB for the test."""
    limit = next(m for m in dramatiq.get_broker().middleware if isinstance(m, MessageSizeLimit))
    default = limit.max_bytes
    limit.max_bytes = 1024
    yield limit
    limit.max_bytes = default


def test_an_oversized_job_is_refused_in_the_callers_transaction_not_by_the_relay(jobs, size_limit):
    # When a transaction enqueues a job with a 2 KiB argument
    with pytest.raises(MessageTooLarge), transaction.atomic():
        enqueue_on_commit(tasks.noop, "x" * 2048)

    # Then the transaction rolled back with it: no row waits for a relay that could never send it
    assert not OutboxMessage.objects.exists()
    jobs.assert_nothing_enqueued()


def test_an_outbox_row_over_a_lowered_limit_is_dead_lettered_and_the_rest_of_its_chunk_sent(jobs, size_limit):
    # Given three rows written before the limit was lowered, one of them 2 KiB
    big = tasks.noop.message("x" * 2048)
    OutboxMessage.objects.bulk_create(
        OutboxMessage(message=_as_json(message)) for message in (tasks.noop.message("a"), big, tasks.noop.message("b"))
    )

    # When the relay runs
    handled = outbox_relay(older_than=timedelta(0))

    # Then the small jobs were sent, the big one is a dead letter "oversized", and the outbox is empty
    assert handled == 3
    assert sorted(job.args for job in jobs.enqueued(tasks.noop)) == [("a",), ("b",)]
    assert DeadLetter.objects.get(message_id=big.message_id).reason == "oversized"
    assert not OutboxMessage.objects.exists()
    assert outbox_relay(older_than=timedelta(0)) == 0


def test_a_connection_lost_while_the_relay_refuses_a_row_fails_the_relay_instead_of_counting_rows_sent(
    jobs, size_limit
):
    # Given two rows, the second written before the limit was lowered, each sent in a chunk of its
    # own, and a database connection that dies while the oversized one is dead-lettered (the
    # write fails, and so does rolling back to the savepoint around it)
    small, big = tasks.noop.message("a"), tasks.noop.message("x" * 2048)
    OutboxMessage.objects.bulk_create(OutboxMessage(message=_as_json(message)) for message in (small, big))
    lost = OperationalError("server closed the connection unexpectedly")

    def record_refused(**kwargs):
        with transaction.atomic():  # as get_or_create's savepoint
            raise lost

    with (
        mock.patch.object(outbox, "CHUNK_SIZE", 1),
        mock.patch.object(dead_letters, "record_refused", side_effect=record_refused),
        mock.patch.object(connections["default"], "savepoint_rollback", side_effect=lost),
        pytest.raises(OperationalError),
    ):
        # When the relay runs, then the failure is raised, not counted as a row sent
        outbox_relay(older_than=timedelta(0))

    # And nothing the relay wrote stayed: both rows wait for the next relay, which sends the small
    # job again (sent at least once) and dead-letters the big one
    assert OutboxMessage.objects.count() == 2
    assert not DeadLetter.objects.exists()
    assert outbox_relay(older_than=timedelta(0)) == 2
    assert DeadLetter.objects.get(message_id=big.message_id).reason == "oversized"
    assert not OutboxMessage.objects.exists()
    assert {job.args for job in jobs.enqueued(tasks.noop)} == {("a",)}


def test_a_bulk_send_with_an_oversized_message_takes_no_unique_lock(jobs, size_limit):
    # Given a chunk whose unique job comes before an oversized message
    unique = tasks.unique_per_order.message(7)
    with pytest.raises(MessageTooLarge):
        enqueue_many([unique, tasks.noop.message("x" * 2048)])

    # Then nothing was sent, and the unique job can be sent afterwards: it left no lock behind
    jobs.assert_nothing_enqueued()
    enqueue_many([tasks.unique_per_order.message(7)])
    jobs.assert_enqueued(tasks.unique_per_order, 7, count=1)
