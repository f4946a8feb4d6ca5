"""Bulk enqueue: pipelined sends that run the same middleware as one send and lose nothing."""

from __future__ import annotations

import dramatiq
import pytest
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware

from tests.support import tasks
from workers.bulk import enqueue_many
from workers.middleware.unique import UniqueJobs
from workers.testing import declare_actors, wait_until

pytestmark = pytest.mark.django_db


class HookLog(Middleware):
    """Records every enqueue hook it sees, as (hook, message id)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def before_enqueue(self, broker, message, delay) -> None:
        self.seen.append(("before", message.message_id))

    def after_enqueue(self, broker, message, delay) -> None:
        self.seen.append(("after", message.message_id))


@pytest.fixture
def bulk_broker(redis_client, redis_url):
    hooks = HookLog()
    broker = declare_actors(
        RedisBroker(url=redis_url, middleware=[UniqueJobs(), hooks]), tasks.noop, tasks.unique_flaky
    )
    yield broker, hooks
    broker.close()


def test_every_message_reaches_its_queue_once_with_both_hooks(bulk_broker, redis_client):
    broker, hooks = bulk_broker
    messages = [broker.get_actor("noop").message(f"job-{number}") for number in range(2500)]

    sent = enqueue_many(messages, broker=broker, chunk_size=1000)

    assert len(sent) == 2500
    assert redis_client.llen("dramatiq:default") == 2500
    stored = {dramatiq.Message.decode(data).message_id for data in redis_client.hvals("dramatiq:default.msgs")}
    assert stored == {message.message_id for message in messages}
    assert hooks.seen.count(("before", messages[0].message_id)) == 1
    assert [hook for hook, _ in hooks.seen].count("after") == 2500


def test_delayed_messages_wait_on_the_delay_queue(bulk_broker, redis_client):
    broker, _ = bulk_broker

    sent = enqueue_many([broker.get_actor("noop").message("later")] * 3, broker=broker, delay=60_000)

    assert redis_client.llen("dramatiq:default.DQ") == 3
    assert redis_client.llen("dramatiq:default") == 0
    assert all(message.options["eta"] > 0 for message in sent)


def test_duplicates_of_a_unique_job_are_left_out(bulk_broker, redis_client):
    broker, _ = bulk_broker
    unique = broker.get_actor("unique_flaky")

    sent = enqueue_many([unique.message("same"), unique.message("same"), unique.message("other")], broker=broker)

    assert [message.args for message in sent] == [("same",), ("other",)]
    assert redis_client.llen("dramatiq:default") == 2


def test_other_brokers_send_one_by_one_with_the_same_result(jobs):
    sent = enqueue_many([tasks.noop.message(f"stub-{number}") for number in range(5)])

    assert len(sent) == 5
    assert [job.args for job in jobs.enqueued(tasks.noop)] == [(f"stub-{number}",) for number in range(5)]


@pytest.mark.delivery
def test_a_worker_runs_every_bulk_sent_job(start_worker, bulk_broker, redis_url):
    broker, _ = bulk_broker
    start_worker(redis_url=redis_url, threads=4)

    enqueue_many([broker.get_actor("noop").message(f"bulk-{number}") for number in range(300)], broker=broker)

    wait_until(lambda: all(tasks.recorded(f"bulk-{number}") for number in range(300)), timeout=60, what="all 300 jobs")
    assert sum(len(tasks.recorded(f"bulk-{number}")) for number in range(300)) == 300
