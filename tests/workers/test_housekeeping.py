"""Housekeeping: old job records pruned, dead workers' messages back on their queues, both on a schedule."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.utils import timezone
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq_crontab import scheduler

from tests.support import tasks
from workers.housekeeping import dead_workers_requeue, housekeeping_round, job_records_prune
from workers.middleware.housekeeping import Housekeeping
from workers.models import Batch, BatchJob, DeadLetter
from workers.tasks import prune_job_records


def dead_letter(message_id: str, *, days_ago: int) -> DeadLetter:
    row = DeadLetter.objects.create(
        message_id=message_id, actor_name="noop", queue_name="default", message={}, reason="exhausted", error="x"
    )
    DeadLetter.objects.filter(pk=row.pk).update(failed_at=timezone.now() - timedelta(days=days_ago))
    return row


def batch(description: str, *, finished_days_ago: int | None, jobs: int = 2) -> Batch:
    finished_at = None if finished_days_ago is None else timezone.now() - timedelta(days=finished_days_ago)
    row = Batch.objects.create(description=description, finished_at=finished_at, sealed=True)
    BatchJob.objects.bulk_create(
        BatchJob(batch=row, message_id=f"{description}-{n}", actor_name="noop") for n in range(jobs)
    )
    Batch.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(days=90))
    return row


@pytest.mark.django_db
def test_pruning_deletes_old_dead_letters_and_finished_batches_and_keeps_running_ones():
    # Given dead letters and batches on either side of 30 days, and a batch still running for 90
    for n in range(5):
        dead_letter(f"old-{n}", days_ago=31)
    dead_letter("recent", days_ago=29)
    batch("old", finished_days_ago=45)
    batch("recent", finished_days_ago=3)
    batch("running", finished_days_ago=None)

    # When job records older than 30 days are pruned, two rows at a time
    deleted = job_records_prune(older_than=timedelta(days=30), chunk_size=2)

    # Then only the old ones are gone, with their batch jobs
    assert deleted == {"dead_letters": 5, "batches": 1}
    assert list(DeadLetter.objects.values_list("message_id", flat=True)) == ["recent"]
    assert sorted(Batch.objects.values_list("description", flat=True)) == ["recent", "running"]
    assert BatchJob.objects.count() == 4


@pytest.mark.django_db
def test_the_prune_job_keeps_the_configured_number_of_days(perform_jobs, settings):
    settings.JOB_RECORD_RETENTION_DAYS = 7
    dead_letter("eight", days_ago=8)
    dead_letter("six", days_ago=6)
    prune_job_records.send()
    perform_jobs()
    assert list(DeadLetter.objects.values_list("message_id", flat=True)) == ["six"]


def test_the_messages_a_dead_worker_held_go_back_to_their_queue(redis_broker, redis_client, redis_url):
    # Given a worker that fetched two jobs and then fell silent, and a live worker busy with one
    sent = [redis_broker.enqueue(tasks.noop.message(f"held-{n}")) for n in range(2)]
    redis_broker.enqueue(tasks.slow.message("busy", 0.0))
    dead, live = RedisBroker(url=redis_url, middleware=[]), RedisBroker(url=redis_url, middleware=[])
    assert len(dead.do_fetch("default", 2)) == 2 and len(live.do_fetch("low", 1)) == 1
    assert redis_broker.do_fetch("default", 10) == []
    redis_client.zadd("dramatiq:__heartbeats__", {dead.broker_id: 0})  # last heard of at the epoch

    # When housekeeping puts back the messages of dead workers
    requeued = dead_workers_requeue(broker=redis_broker)

    # Then the dead worker's two jobs are on their queue again for any worker, the live worker
    # keeps its own, and the dead worker is forgotten
    assert requeued == 2
    again = [Message.decode(data).message_id for data in redis_broker.do_fetch("default", 10)]
    assert sorted(again) == sorted(message.message_id for message in sent)
    assert redis_broker.do_fetch("low", 10) == []
    assert redis_client.zscore("dramatiq:__heartbeats__", dead.broker_id) is None
    assert dead_workers_requeue(broker=redis_broker) == 0


@pytest.mark.django_db(transaction=True)
def test_a_dead_workers_jobs_go_back_before_the_database_duties_and_a_slow_duty_is_named(
    redis_broker, redis_client, redis_url, monkeypatch, caplog
):
    # Given a dead worker holding a job, and an outbox relay that takes its time
    sent = redis_broker.enqueue(tasks.noop.message("held"))
    dead = RedisBroker(url=redis_url, middleware=[])
    assert len(dead.do_fetch("default", 1)) == 1
    redis_client.zadd("dramatiq:__heartbeats__", {dead.broker_id: 0})
    queued_when_relay_ran = []

    def slow_relay(**kwargs):
        queued_when_relay_ran.append(redis_client.llen("dramatiq:default"))
        return 0

    monkeypatch.setattr("workers.outbox.outbox_relay", slow_relay)
    monkeypatch.setattr("workers.housekeeping.SLOW_DUTY_SECONDS", -1.0)

    # When a housekeeping round runs
    with caplog.at_level("WARNING", logger="workers.housekeeping"):
        done = housekeeping_round(broker=redis_broker)

    # Then the job was back on its queue before the database duties began, and a duty that
    # overran is named in a warning
    assert done["dead_workers_requeued"] == 1
    assert queued_when_relay_ran == [1]
    assert [Message.decode(data).message_id for data in redis_broker.do_fetch("default", 1)] == [sent.message_id]
    assert "housekeeping: outbox_relayed took" in caplog.text


def test_brokers_that_recover_by_themselves_need_nothing():
    assert dead_workers_requeue(broker=StubBroker()) == 0


def test_the_scheduler_sends_the_pruning_job(jobs):
    [entry] = [job for job in scheduler.get_jobs() if job.name == prune_job_records.actor_name]
    entry.func(*entry.args, **entry.kwargs)
    jobs.assert_enqueued(prune_job_records, queue="low", count=1)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="statement_timeout is PostgreSQL's")
def test_housekeeping_statements_are_cancelled_past_their_timeout_on_postgresql(monkeypatch):
    # Given the housekeeping thread's connection, capped at a tenth of a second
    monkeypatch.setattr("workers.middleware.housekeeping.STATEMENT_TIMEOUT_MS", 100)
    Housekeeping(interval=1)._bound_statements()

    # When one of its statements would run for two seconds, then it is cancelled
    with pytest.raises(OperationalError, match="statement timeout"), connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(2)")
    connection.close()
