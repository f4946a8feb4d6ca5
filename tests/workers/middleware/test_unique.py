"""Unique jobs: a twin is dropped (or deferred) while the lock is held, and the lock always comes back."""

from __future__ import annotations

import time
from datetime import timedelta

import dramatiq
import pytest
import redis
from django.db import transaction
from dramatiq.brokers.redis import RedisBroker

from tests.support import tasks
from workers.enqueue import enqueue_on_commit
from workers.middleware.unique import UniqueJobs, unique_locks_refresh
from workers.models import DeadLetter, OutboxMessage
from workers.outbox import outbox_add, outbox_relay
from workers.testing import declare_actors, wait_until
from workers.uniqueness import DuplicateJob

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


@pytest.mark.django_db(transaction=True)
def test_the_relay_sends_a_unique_job_whose_first_send_failed_after_taking_its_lock(jobs, redis_client, monkeypatch):
    # Given a unique job whose send after commit took its lock, then was refused by the broker
    with monkeypatch.context() as patch:
        patch.setattr(jobs.broker.queues["default"], "put", _refuse)
        with transaction.atomic():
            enqueue_on_commit(tasks.unique_flaky, "import-7")
    assert OutboxMessage.objects.count() == 1
    jobs.assert_nothing_enqueued()
    with pytest.raises(DuplicateJob):  # its lock is held: a twin is dropped
        tasks.unique_flaky.send("import-7")

    # When the relay sends it again, its own lock does not stop it
    assert outbox_relay(older_than=timedelta(0)) == 1

    # Then its row is gone once it is sent, it runs once, and its lock is given back
    assert not OutboxMessage.objects.exists()
    jobs.assert_enqueued(tasks.unique_flaky, "import-7", count=1)
    assert jobs.drain() == 1
    assert len(tasks.recorded("import-7")) == 1
    tasks.unique_flaky.send("import-7")


@pytest.mark.django_db(transaction=True)
def test_the_relay_drops_a_unique_job_whose_send_went_through(jobs, redis_client):
    # Given a unique job sent, whose outbox row outlived the send (the process died before deleting it)
    message = tasks.unique_flaky.message("import-8")
    OutboxMessage.objects.create(message={**message.asdict(), "args": ["import-8"]})
    jobs.broker.enqueue(message.copy())

    # When the relay sends it again
    outbox_relay(older_than=timedelta(0))

    # Then the row is gone and the job, queued once, runs once
    assert not OutboxMessage.objects.exists()
    assert jobs.drain() == 1
    assert len(tasks.recorded("import-8")) == 1


def test_a_job_dead_lettered_before_it_runs_gives_its_lock_back(jobs, redis_client):
    tasks.unique_flaky.send(8)  # the key must be a string: refused before it runs

    jobs.drain()

    assert DeadLetter.objects.get().reason == DeadLetter.Reason.MALFORMED
    tasks.unique_flaky.send(8)
    jobs.assert_enqueued(tasks.unique_flaky, 8, count=1)


def test_a_retry_waiting_past_the_ttl_keeps_its_lock_through_housekeeping(jobs, redis_client):
    # Given a unique job whose first attempt failed, its retry waiting in the delay queue
    tasks.unique_flaky.send_with_options(args=("waiting", 1), unique_ttl=300)
    assert jobs.run_next()
    jobs.assert_enqueued(tasks.unique_flaky, "waiting", 1, count=1)
    # and a reference lock of the same ttl, taken later, whose message is gone
    tasks.unique_flaky.send_with_options(args=("reference",), unique_ttl=300)
    jobs.broker.flush("default")

    # While housekeeping refreshes the locks, past the ttl (the reference lock has expired)
    def refreshed_until_the_reference_expired() -> bool:
        unique_locks_refresh(jobs.broker)
        return _sends(tasks.unique_flaky, "reference")

    wait_until(refreshed_until_the_reference_expired, timeout=10, what="the reference lock to expire")

    # Then the waiting retry's twin is dropped; once the retry has succeeded, a twin may be sent
    with pytest.raises(DuplicateJob):
        tasks.unique_flaky.send("waiting", 1)
    jobs.drain()
    assert len(tasks.recorded("waiting")) == 2
    tasks.unique_flaky.send("waiting", 1)


def test_unique_locks_refresh_keeps_a_queued_jobs_lock_on_the_stub_broker(jobs, redis_client):
    _refresh_keeps_the_queued_lock_only(jobs.broker, tasks.unique_slow, tasks.unique_flaky)


def _refresh_keeps_the_queued_lock_only(broker: dramatiq.Broker, queued: dramatiq.Actor, gone: dramatiq.Actor) -> None:
    # Given two unique jobs whose locks expire after 1 s: one queued, then one the broker no longer holds
    queued.send_with_options(args=("queued", 0), unique_ttl=1000)
    gone.send_with_options(args=("gone",), unique_ttl=1000)
    broker.flush(gone.queue_name)

    # When housekeeping refreshes the locks until the gone job's lock has expired
    def refreshed_until_the_gone_lock_expired() -> bool:
        unique_locks_refresh(broker)
        return _sends(gone, "gone")

    wait_until(refreshed_until_the_gone_lock_expired, timeout=10, what="the gone job's lock to expire")

    # Then the queued job, whose lock would have expired first, still holds it
    with pytest.raises(DuplicateJob):
        queued.send("queued", 0)


def _refuse(data: bytes) -> None:
    raise ConnectionError("the broker refused the message")


@pytest.fixture
def unique_broker(redis_client, redis_url) -> RedisBroker:
    """A RedisBroker with the unique middleware and the unique test actors, as a web process has it."""
    broker = declare_actors(
        RedisBroker(url=redis_url, middleware=[UniqueJobs()]),
        tasks.unique_exclusive,
        tasks.unique_slow,
        tasks.unique_flaky,
        tasks.unique_retried_later,
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


def test_unique_locks_refresh_keeps_a_queued_jobs_lock_on_redis(unique_broker):
    _refresh_keeps_the_queued_lock_only(
        unique_broker, unique_broker.get_actor("unique_slow"), unique_broker.get_actor("unique_flaky")
    )


@pytest.mark.delivery
@pytest.mark.django_db(transaction=True)
def test_a_unique_job_whose_redis_send_failed_is_relayed_and_runs_once(
    start_worker, unique_broker, redis_url, monkeypatch
):
    # Given a unique job whose bulk send took its lock, then lost its connection
    unique = unique_broker.get_actor("unique_flaky")
    message = unique.message("relayed")
    with monkeypatch.context() as patch:
        patch.setattr(unique_broker.client, "pipeline", _lost_pipeline)
        with transaction.atomic():
            outbox_add([message], broker=unique_broker)
    assert OutboxMessage.objects.count() == 1
    with pytest.raises(DuplicateJob):
        unique.send("relayed")

    # When the relay sends it, and then (the row outliving the send) sends it again
    assert outbox_relay(older_than=timedelta(0), broker=unique_broker) == 1
    assert not OutboxMessage.objects.exists()
    OutboxMessage.objects.create(message={**message.asdict(), "args": ["relayed"]})
    outbox_relay(older_than=timedelta(0), broker=unique_broker)

    # Then it is queued once, and runs once
    assert not OutboxMessage.objects.exists()
    assert unique_broker.client.hlen(f"{unique_broker.namespace}:default.msgs") == 1
    start_worker(redis_url=redis_url, threads=2, queues=["default"])
    wait_until(
        lambda: tasks.recorded("relayed") and not unique_broker.client.hlen(f"{unique_broker.namespace}:default.msgs"),
        timeout=60,
        what="the job to run and be acknowledged",
    )
    assert len(tasks.recorded("relayed")) == 1
    unique.send("relayed")  # its lock was given back


@pytest.mark.delivery
def test_a_running_jobs_lock_outlives_its_ttl_until_the_job_ends(start_worker, unique_broker, redis_url):
    # Given a unique job whose lock expires 2 s after what keeps it alive, running for 6 s
    worker = start_worker(redis_url=redis_url, threads=1, queues=["low"])
    slow = unique_broker.get_actor("unique_slow")
    slow.send_with_options(args=("long", 6.0), unique_ttl=2000)
    worker.wait_for_log(r"job started actor=unique_slow")

    # While it runs, three times its ttl, a twin is dropped
    while not tasks.recorded("long"):
        with pytest.raises(DuplicateJob):
            slow.send_with_options(args=("long", 6.0), unique_ttl=2000, delay=60_000)
        time.sleep(0.2)

    # Once it has ended, a twin may be sent
    wait_until(lambda: _sends(slow, "long", 6.0, delay=60_000), timeout=10, what="the lock to be given back")


@pytest.mark.delivery
def test_a_lock_outlives_its_ttl_while_the_job_waits_for_its_retry(start_worker, unique_broker, redis_url):
    # Given a unique job (lock expiry 2 s) whose first attempt failed, its retry due 6 s later
    start_worker(redis_url=redis_url, threads=2, queues=["default"])
    later = unique_broker.get_actor("unique_retried_later")
    later.send("later")
    wait_until(lambda: tasks.recorded("later"), timeout=30, what="the first attempt")

    # While the retry waits, three times the ttl, a twin is dropped
    while len(tasks.recorded("later")) < 2:
        with pytest.raises(DuplicateJob):
            later.send_with_options(args=("later",), delay=60_000)
        time.sleep(0.2)

    # Once the retry has succeeded, a twin may be sent
    wait_until(lambda: _sends(later, "later", delay=60_000), timeout=10, what="the lock to be given back")


def _sends(actor: dramatiq.Actor, *args, **options) -> bool:
    try:
        actor.send_with_options(args=args, **options)
    except DuplicateJob:
        return False
    return True


class _LostPipeline:
    """A pipeline whose connection drops as it executes."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        pass

    def __getattr__(self, name):
        return lambda *args, **kwargs: self

    def execute(self):
        raise redis.ConnectionError("connection lost")


def _lost_pipeline(*args, **kwargs) -> _LostPipeline:
    return _LostPipeline()
