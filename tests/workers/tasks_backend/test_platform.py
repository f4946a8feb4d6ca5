"""What a ``@task`` gets from the platform underneath: retries, dead letters, queues, the outbox, results in Redis."""

from __future__ import annotations

import logging
from datetime import timedelta
from unittest import mock

import dramatiq
import pytest
from django.core.cache import cache
from django.utils import timezone
from django_tasks import TaskResultStatus, default_task_backend

from tests.task_functions import tasks as test_tasks
from workers.models import DeadLetter, OutboxMessage
from workers.outbox import outbox_relay
from workers.tasks_backend.results import RedisResults, result_ttl_ms

pytestmark = pytest.mark.django_db


@pytest.fixture
def committed(jobs, django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


def test_a_failing_task_is_retried_and_its_result_says_so_between_attempts(committed, jobs, perform_jobs):
    # Given a task that fails on its first two attempts
    with committed():
        result = test_tasks.succeeds_on_attempt.enqueue(3)

    # When its first attempt fails
    assert jobs.run_next()
    result.refresh()

    # Then the result is ready to run again, with the attempt's error, and the retry waits its delay
    assert (result.status, result.attempts, result.finished_at) == (TaskResultStatus.READY, 1, None)
    assert result.errors[0].exception_class is ConnectionError
    assert [job.delayed for job in jobs.enqueued()] == [True]

    # When the retries run
    perform_jobs()
    result.refresh()

    # Then it succeeded on its third attempt, each attempt's error kept
    assert (result.status, result.return_value, result.attempts) == (TaskResultStatus.SUCCESSFUL, 3, 3)
    assert [error.exception_class for error in result.errors] == [ConnectionError, ConnectionError]
    assert result.started_at <= result.last_attempted_at <= result.finished_at


def test_a_task_out_of_retries_fails_into_the_dead_letters_and_calls_its_callback(committed, perform_jobs):
    with committed():
        result = test_tasks.always_down.enqueue(key="exhausted-1")

    perform_jobs()
    result.refresh()

    assert (result.status, result.attempts) == (TaskResultStatus.FAILED, 2)
    dead = DeadLetter.objects.get()
    path = test_tasks.always_down.module_path
    assert (dead.actor_name, dead.message_id, dead.reason) == (path, result.id, "exhausted")
    assert cache.get("exhausted-1") == "ConnectionError: still down"


def test_a_return_value_json_cannot_hold_is_not_retried(committed, perform_jobs):
    with committed():
        result = test_tasks.complex_return_value.enqueue()

    assert perform_jobs() == 1

    assert DeadLetter.objects.get().reason == "discarded"
    assert default_task_backend.get_result(result.id).status == TaskResultStatus.FAILED


def test_arguments_that_do_not_fit_the_task_are_refused_before_it_runs(jobs, perform_jobs):
    # Given a message for the task sent by hand, with text where the task takes numbers
    dramatiq.get_broker().get_actor(test_tasks.add.module_path).send("one", 2)

    perform_jobs()

    assert DeadLetter.objects.get().reason == "malformed"


def test_priority_chooses_among_the_weighted_queues(committed, jobs):
    with committed():
        urgent = test_tasks.noop_task.using(priority=50).enqueue()
        low = test_tasks.noop_task.using(priority=-50).enqueue()
        own = test_tasks.add.using(priority=10).enqueue(1, 2)

    assert [job.message_id for job in jobs.enqueued(queue="urgent")] == [urgent.id]
    assert [job.message_id for job in jobs.enqueued(queue="low")] == [low.id]
    assert [job.message_id for job in jobs.enqueued(queue="mailers")] == [own.id]
    assert default_task_backend.get_result(urgent.id).task.priority == 50


def test_run_after_delays_the_job(committed, jobs, perform_jobs):
    run_after = timezone.now() + timedelta(hours=1)
    with committed():
        result = test_tasks.add.using(run_after=run_after).enqueue(20, 22)

    assert [job.delayed for job in jobs.enqueued()] == [True]
    assert default_task_backend.get_result(result.id).task.run_after == run_after

    perform_jobs()  # as if the hour had passed
    assert default_task_backend.get_result(result.id).return_value == 42


def test_the_job_log_names_the_task(committed, perform_jobs, caplog):
    with committed():
        result = test_tasks.add.enqueue(1, 2)

    with caplog.at_level(logging.INFO):
        perform_jobs()

    assert f"job finished actor=tests.task_functions.tasks.add queue=mailers message_id={result.id}" in caplog.text


def test_a_unique_task_is_queued_once_while_its_twin_waits(committed, jobs):
    with committed():
        test_tasks.unique_record.enqueue("same")
        test_tasks.unique_record.enqueue("same")
        test_tasks.unique_record.enqueue("other")

    assert sorted(job.args for job in jobs.enqueued()) == [("other",), ("same",)]


@pytest.mark.django_db(transaction=True)
def test_a_task_the_broker_refused_at_commit_is_sent_by_the_relay(jobs, perform_jobs):
    # Given a broker that is down when the transaction commits
    with mock.patch.object(jobs.broker, "enqueue", side_effect=ConnectionError("broker down")):
        from django.db import transaction

        with transaction.atomic():
            result = test_tasks.calculate_meaning_of_life.enqueue()
    assert OutboxMessage.objects.count() == 1

    # When the broker is back and the relay runs, then the task runs once
    assert outbox_relay(older_than=timedelta(0)) == 1
    assert perform_jobs() == 1
    assert default_task_backend.get_result(result.id).return_value == 42


def test_results_in_redis_expire_after_the_configured_time(redis_client, settings):
    settings.TASK_RESULT_TTL = 600
    store = RedisResults(redis_client, "backoffice")

    store.write("r1", {"task": "t"}, keep={"status": "READY", "started_at": "a"})
    record = store.write("r1", {"worker:1": "w"}, keep={"started_at": "b"}, status="RUNNING", phase=2, read=True)

    assert record == {"task": "t", "status": "RUNNING", "phase": "2", "started_at": "a", "worker:1": "w"}
    assert 0 < redis_client.pttl("backoffice:task-results:r1") <= result_ttl_ms()


def test_a_start_written_in_the_background_after_the_end_does_not_put_running_back(redis_client):
    # Given a failure recorded at once, and the start of that attempt still waiting to be sent
    store = RedisResults(redis_client, "backoffice")
    store.write("r2", {"error:1": "{}"}, status="FAILED", phase=3)
    store.write_soon("r2", {"worker:1": "w"}, status="RUNNING", phase=2)

    # When the background writes are sent
    assert store.background.flush()

    # Then the start's fields are there, and the status is still the end's
    assert redis_client.hgetall("backoffice:task-results:r2") == {
        b"status": b"FAILED",
        b"phase": b"3",
        b"error:1": b"{}",
        b"worker:1": b"w",
    }
