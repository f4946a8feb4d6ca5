"""Unique jobs: a twin is dropped (or deferred) while the lock is held, and the lock always comes back."""

from __future__ import annotations

import dramatiq
import pytest
from django.db import transaction
from dramatiq.brokers.redis import RedisBroker

from tests.support import tasks
from workers.enqueue import enqueue_on_commit
from workers.middleware.unique import DuplicateJob, RedisLocks, UniqueJobs
from workers.models import DeadLetter, OutboxMessage
from workers.testing import declare_actors, wait_until

pytestmark = pytest.mark.django_db

RECOVERY = {"REDIS_HEARTBEAT_TIMEOUT_MS": "2000", "REDIS_MAINTENANCE_CHANCE": "1000000"}


def test_a_second_send_while_queued_is_dropped_and_the_job_runs_once(jobs, redis_client):
    tasks.unique_flaky.send("import-1")

    with pytest.raises(DuplicateJob, match="unique_flaky with these arguments is already queued or running"):
        tasks.unique_flaky.send("import-1")
    tasks.unique_flaky.send("import-2")  # other arguments: another job

    jobs.assert_enqueued(tasks.unique_flaky, "import-1", count=1)
    assert jobs.drain() == 2
    assert len(tasks.recorded("import-1")) == 1


def test_the_lock_is_released_on_success(jobs, redis_client):
    tasks.unique_flaky.send("daily")
    jobs.drain()

    tasks.unique_flaky.send("daily")

    jobs.assert_enqueued(tasks.unique_flaky, "daily", count=1)


def test_the_lock_is_kept_across_retries_and_released_on_final_failure(jobs, redis_client):
    tasks.unique_flaky.send("retrying", 10)  # fails every attempt: 1 + 2 retries
    first = jobs.enqueued(tasks.unique_flaky)[0]

    # Run the first attempt only: the retry is waiting, and still holds the lock
    assert jobs.run_next()
    jobs.assert_enqueued(tasks.unique_flaky, "retrying", 10, count=1)
    with pytest.raises(DuplicateJob):
        tasks.unique_flaky.send("retrying", 10)

    jobs.drain()
    assert len(tasks.recorded("retrying")) == 3
    assert DeadLetter.objects.get(message_id=first.message_id).reason == DeadLetter.Reason.EXHAUSTED

    tasks.unique_flaky.send("retrying", 10)
    jobs.assert_enqueued(tasks.unique_flaky, "retrying", 10, count=1)


def test_a_key_function_makes_jobs_with_other_arguments_twins(jobs):
    tasks.unique_per_order.send(7, note="first")

    with pytest.raises(DuplicateJob):
        tasks.unique_per_order.send(7, note="second")
    tasks.unique_per_order.send(8, note="other order")

    assert [job.args for job in jobs.enqueued(tasks.unique_per_order)] == [(7,), (8,)]


def test_until_started_releases_the_lock_when_the_job_starts(jobs, redis_client):
    tasks.unique_until_started.send("report")
    with pytest.raises(DuplicateJob):
        tasks.unique_until_started.send("report")

    assert jobs.run_next()

    assert tasks.recorded("report")[0]["twin"] == "queued"
    jobs.assert_enqueued(tasks.unique_until_started, "report", count=1)


@pytest.mark.django_db(transaction=True)
def test_enqueue_on_commit_drops_a_duplicate_without_an_error(jobs):
    for _ in range(3):
        with transaction.atomic():
            enqueue_on_commit(tasks.unique_flaky, "nightly")

    jobs.assert_enqueued(tasks.unique_flaky, "nightly", count=1)
    assert not OutboxMessage.objects.exists()  # dropped, not left for the relay to retry for ever


def test_an_unknown_mode_is_refused_when_the_actor_is_declared():
    broker = dramatiq.brokers.stub.StubBroker(middleware=[UniqueJobs()])

    with pytest.raises(ValueError, match="unique='always' is not one of until_executed, until_started"):
        dramatiq.actor(lambda: None, actor_name="typo", broker=broker, unique="always")


def test_redis_locks_belong_to_their_owner_and_expire(redis_client):
    locks = RedisLocks(redis_client)

    assert locks.acquire("lock:a", "message-1", 300)
    assert not locks.acquire("lock:a", "message-2", 300)
    assert not locks.release("lock:a", "message-2")  # not the owner: left alone
    assert locks.owner("lock:a") == "message-1"
    wait_until(lambda: locks.owner("lock:a") is None, timeout=5, what="the lock to expire")
    assert locks.acquire("lock:a", "message-2", 300)
    assert locks.release("lock:a", "message-2")
    assert locks.owner("lock:a") is None


@pytest.fixture
def unique_broker(redis_client, redis_url) -> RedisBroker:
    """A RedisBroker with the unique middleware and the unique test actors, as a web process has it."""
    broker = declare_actors(
        RedisBroker(url=redis_url, middleware=[UniqueJobs()]), tasks.unique_exclusive, tasks.unique_slow
    )
    yield broker
    broker.close()


@pytest.mark.delivery
def test_while_executing_twins_all_run_but_never_at_once(start_worker, unique_broker, redis_url):
    start_worker(redis_url=redis_url, threads=4)

    for _ in range(3):
        unique_broker.get_actor("unique_exclusive").send("exclusive", 0.5)

    wait_until(lambda: len(tasks.recorded("exclusive")) == 3, timeout=60, what="all three runs")
    runs = sorted(tasks.recorded("exclusive"), key=lambda run: run["started"])
    for earlier, later in zip(runs, runs[1:], strict=False):
        assert later["started"] >= earlier["ended"], f"runs overlapped: {runs}"


@pytest.mark.delivery
def test_a_killed_workers_lock_expires_and_its_job_still_runs(start_worker, unique_broker, redis_url):
    # Given a unique job (lock expiry 5 s) running on a worker that is then killed
    worker = start_worker(redis_url=redis_url, threads=1, queues=["low"])
    slow = unique_broker.get_actor("unique_slow")
    slow.send("held", 2.0)
    worker.wait_for_log(r"job started actor=unique_slow")
    worker.kill()

    # While the lock lives a twin is dropped; once it expires a new send is accepted
    with pytest.raises(DuplicateJob):
        slow.send("held", 2.0)
    wait_until(lambda: _sends(slow, "held", 2.0), timeout=30, what="the lock to expire")

    # And the killed worker's job is not lost: another worker runs it (and the new one)
    start_worker(redis_url=redis_url, threads=1, queues=["low"], env=RECOVERY)
    wait_until(lambda: len(tasks.recorded("held")) == 2, timeout=90, what="both jobs")


def _sends(actor: dramatiq.Actor, *args) -> bool:
    try:
        actor.send(*args)
    except DuplicateJob:
        return False
    return True
