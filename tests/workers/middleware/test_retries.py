"""Retries, discards, exhaustion and malformed arguments, run through the middleware in-process."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from datetime import timedelta
from unittest import mock

import dramatiq
import pytest
from django.contrib.auth.models import User
from django.db import OperationalError
from dramatiq.broker import MessageProxy

from workers import dead_letters
from workers.errors import PermanentError
from workers.exhausted_callbacks import ExhaustedCallbackError
from workers.middleware.retries import exponential_backoff
from workers.models import DeadLetter, OutboxMessage
from workers.outbox import outbox_relay
from workers.retry_logging import RetryLogLevel

pytestmark = pytest.mark.django_db

attempts: list[str] = []
exhausted: list[dict] = []
callback_failures: list[Exception] = []


@dramatiq.actor(max_retries=3, retry_backoff=lambda count: 1)
def remember_exhausted(key: str, error: str, message_id: str) -> None:
    if callback_failures:
        raise callback_failures.pop()
    exhausted.append({"key": key, "error": error, "message_id": message_id})


@dramatiq.actor(max_retries=3, retry_backoff=lambda count: 10 * (count + 1))
def seed_schedule(key: str) -> None:
    attempts.append(key)
    raise ConnectionError("gateway unreachable")


@dramatiq.actor(max_retries=2, retry_backoff=lambda count: 1, on_retries_exhausted=remember_exhausted)
def fails_twice(key: str) -> None:
    attempts.append(key)
    if attempts.count(key) <= 2:
        raise TimeoutError("slow gateway")


@dramatiq.actor(max_retries=1, retry_backoff=lambda count: 1, on_retries_exhausted=remember_exhausted)
def never_works(key: str, note: str = "") -> None:
    attempts.append(key)
    raise TimeoutError("slow gateway")


@dramatiq.actor(max_retries=0, on_retries_exhausted="remember_exhausted")
def never_works_by_name(key: str) -> None:
    raise TimeoutError("slow gateway")


class PaymentRefused(PermanentError):
    pass


@dramatiq.actor(max_retries=5, discard=(LookupError,))
def refuse_payment(key: str, kind: str) -> None:
    attempts.append(key)
    if kind == "permanent":
        raise PaymentRefused("card expired")
    if kind == "missing":
        User.objects.get(pk=-1)
    raise LookupError("listed in discard")


@contextmanager
def dead_letters_refused_once():
    """The database refuses the first dead letter written inside, as a locked SQLite file would."""
    failures = [OperationalError("database is locked")]
    record = dead_letters.record

    def record_unless_locked(*args, **kwargs):
        if failures:
            raise failures.pop()
        return record(*args, **kwargs)

    with mock.patch.object(dead_letters, "record", side_effect=record_unless_locked):
        yield


@pytest.fixture(autouse=True)
def _reset():
    attempts.clear()
    exhausted.clear()
    callback_failures.clear()


def test_the_seed_schedule_delays_each_retry_by_ten_seconds_more(jobs, caplog):
    # Given an actor retried on the schedule 10 * (count + 1) seconds
    caplog.set_level(logging.INFO, logger="workers.middleware.retries.Retries")
    seed_schedule.send("order-1")

    # When every attempt fails
    jobs.drain()

    # Then it ran once plus three retries, 10 s, 20 s and 30 s apart, and ended dead-lettered
    assert attempts == ["order-1"] * 4
    delays = [record.args[2] for record in caplog.records if record.msg.startswith("Retrying message")]
    assert delays == [10_000, 20_000, 30_000]
    assert DeadLetter.objects.get().reason == DeadLetter.Reason.EXHAUSTED


def test_a_job_that_recovers_within_its_retries_succeeds_without_a_dead_letter(perform_jobs):
    fails_twice.send("k")
    perform_jobs()
    assert attempts == ["k", "k", "k"]
    assert exhausted == []
    assert not DeadLetter.objects.exists()
    assert not OutboxMessage.objects.exists()


@pytest.mark.parametrize(
    "send",
    [
        lambda: never_works.send("k"),
        lambda: never_works.send(key="k"),
        lambda: never_works.send_with_options(kwargs={"key": "k"}),
    ],
    ids=["positional", "keyword", "with options"],
)
def test_the_exhausted_callback_is_a_job_sent_the_arguments_by_name_and_the_error_once(jobs, perform_jobs, send):
    # Given an actor with one retry that always fails, sent with positional or keyword arguments
    message = send()

    # When its retries run out, and the jobs that follows runs
    perform_jobs()

    # Then the callback job ran exactly once with the job's argument by name and its last error
    assert attempts == ["k", "k"]
    assert exhausted == [{"key": "k", "error": "TimeoutError: slow gateway", "message_id": message.message_id}]
    dead = DeadLetter.objects.get(message_id=message.message_id)
    assert (dead.reason, dead.attempts, dead.error) == ("exhausted", 2, "TimeoutError: slow gateway")
    assert [m.message_id for m in jobs.dead_letters] == [message.message_id]


def test_a_callback_named_by_its_actor_name_is_sent_too(perform_jobs):
    message = never_works_by_name.send(key="k")
    perform_jobs()
    assert exhausted == [{"key": "k", "error": "TimeoutError: slow gateway", "message_id": message.message_id}]


def test_a_callback_that_fails_once_is_retried_and_runs_exactly_once(jobs, perform_jobs, caplog):
    # Given a callback whose first run meets a database blip
    caplog.set_level(logging.INFO, logger="workers.middleware.retries.Retries")
    callback_failures.append(OperationalError("database is locked"))
    message = never_works.send("k")

    # When the job exhausts its retries and the callback job runs, and runs again
    perform_jobs()

    # Then the callback took effect once, on its own retry
    assert exhausted == [{"key": "k", "error": "TimeoutError: slow gateway", "message_id": message.message_id}]
    retried = [r.args[1] for r in caplog.records if r.msg.startswith("Retrying message")]
    assert retried == ["never_works", "remember_exhausted"]
    assert DeadLetter.objects.get().message_id == message.message_id


def test_a_callback_refused_by_the_broker_at_commit_waits_in_the_outbox_for_the_relay(
    jobs, perform_jobs, django_capture_on_commit_callbacks
):
    # Given a job whose retries run out
    message = never_works.send("k")
    with django_capture_on_commit_callbacks() as at_commit:
        jobs.drain()

    # When the broker refuses every send at the commit
    with mock.patch.object(jobs.broker, "enqueue", side_effect=ConnectionError("broker down")):
        for callback in at_commit:
            callback()

    # Then the callback job waits in the outbox, and the relay sends it: it runs once
    assert exhausted == []
    assert OutboxMessage.objects.get().message["actor_name"] == "remember_exhausted"
    assert outbox_relay(older_than=timedelta(0)) == 1
    perform_jobs()
    assert exhausted == [{"key": "k", "error": "TimeoutError: slow gateway", "message_id": message.message_id}]
    assert not OutboxMessage.objects.exists()


def test_a_dead_letter_that_cannot_be_written_tries_the_job_again_rather_than_lose_its_callback(
    jobs, perform_jobs, caplog
):
    # Given a job whose last attempt fails while the database refuses the dead letter once
    with dead_letters_refused_once():
        message = never_works.send("k")

        # When its retries run out
        perform_jobs()

    # Then the last attempt ran again, and the dead letter and the callback were written then, once
    assert attempts == ["k", "k", "k"]
    assert DeadLetter.objects.get(message_id=message.message_id).reason == "exhausted"
    assert len(exhausted) == 1
    assert any(
        r.getMessage().startswith("Could not record message") and "as exhausted" in r.getMessage()
        for r in caplog.records
    )


def test_a_discarded_job_whose_dead_letter_cannot_be_written_is_tried_again_not_lost(jobs, perform_jobs):
    # Given a job that fails for good while the database refuses its dead letter once
    with dead_letters_refused_once():
        message = refuse_payment.send("k", "permanent")

        # When it runs
        perform_jobs()

    # Then it ran again and its dead letter was written then, once, and its message failed
    assert attempts == ["k", "k"]
    assert DeadLetter.objects.get(message_id=message.message_id).reason == "discarded"
    assert [dead.message_id for dead in jobs.dead_letters] == [message.message_id]


def test_a_redelivered_exhausted_message_does_not_call_back_twice(jobs, perform_jobs):
    # Given a message whose retries ran out
    message = never_works.send("k")
    perform_jobs()
    # When the broker delivers its last attempt again (a worker died before acknowledging it)
    jobs.broker.enqueue(message.copy(options={"retries": 1}))
    perform_jobs()
    # Then the callback is not sent a second time
    assert len(exhausted) == 1
    assert DeadLetter.objects.count() == 1


def test_a_callback_that_is_not_an_actor_or_asks_for_what_the_job_lacks_is_refused_at_import():
    with pytest.raises(ExhaustedCallbackError, match="must be an actor or an actor's name"):

        @dramatiq.actor(on_retries_exhausted=lambda message, exception: None)
        def old_style(key: str) -> None: ...

    with pytest.raises(ExhaustedCallbackError, match="asks for key, which the job does not have"):

        @dramatiq.actor(on_retries_exhausted=remember_exhausted)
        def other_arguments(order_id: int) -> None: ...


def test_the_default_callback_logs_one_error_line(jobs, caplog):
    @dramatiq.actor(max_retries=0)
    def gives_up_quietly() -> None:
        raise TimeoutError("slow")

    message = gives_up_quietly.send()
    jobs.drain()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("retries exhausted")]
    assert lines == [
        f"retries exhausted actor=gives_up_quietly queue=default message_id={message.message_id} attempts=1 "
        "error=TimeoutError"
    ]


@pytest.mark.parametrize("kind", ["permanent", "listed", "missing"])
def test_discarded_exceptions_are_never_retried(jobs, kind):
    message = refuse_payment.send("k", kind)
    jobs.drain()
    assert attempts == ["k"]
    dead = DeadLetter.objects.get(message_id=message.message_id)
    assert dead.reason == DeadLetter.Reason.DISCARDED
    assert len(jobs.dead_letters) == 1


def test_malformed_arguments_are_dead_lettered_without_running_the_actor(jobs):
    message = refuse_payment.send("k", "permanent", "one too many")
    jobs.drain()
    assert attempts == []
    dead = DeadLetter.objects.get(message_id=message.message_id)
    assert dead.reason == DeadLetter.Reason.MALFORMED
    assert "too many positional arguments" in dead.error


def test_the_default_schedule_grows_exponentially_with_jitter():
    delays = [exponential_backoff(count, min_backoff=1000) for count in range(6)]
    for count, delay in enumerate(delays):
        ceiling = 2 ** (count + 1)
        assert ceiling / 2 <= delay <= ceiling, (count, delay)
    assert exponential_backoff(40, min_backoff=1000, max_backoff=60_000) <= 60


@pytest.mark.parametrize(
    ("retries", "level", "line", "traceback"),
    [
        (0, logging.WARNING, "with TimeoutError: slow gateway; it will be retried.", False),
        (2, logging.ERROR, "with unhandled exception.", True),
    ],
    ids=["retried", "last attempt"],
)
def test_the_worker_logs_a_failure_that_will_be_retried_as_a_warning_without_traceback(
    jobs, caplog, retries, level, line, traceback
):
    # Given a failure of a job with two retries, on its first attempt or its last
    message = MessageProxy(fails_twice.message("k").copy(options={"retries": retries}))
    worker_log = logging.getLogger("dramatiq.worker.WorkerThread")

    # When Dramatiq's worker logs it, as it logs every unhandled exception
    try:
        raise TimeoutError("slow gateway")
    except TimeoutError:
        worker_log.error(RetryLogLevel.FAILED, message, exc_info=True)

    # Then a retry is one warning line, and the last failure keeps its error and traceback
    [record] = [r for r in caplog.records if r.name == worker_log.name]
    assert record.levelno == level
    assert record.getMessage() == f"Failed to process message fails_twice message_id={message.message_id} {line}"
    assert bool(record.exc_info) is traceback


def test_a_retry_the_broker_refuses_waits_in_the_outbox_instead_of_vanishing(jobs, perform_jobs):
    # Given a job whose first attempt fails while the broker refuses every send
    message = fails_twice.send("k")
    with mock.patch.object(jobs.broker, "enqueue", side_effect=ConnectionError("redis is restarting")):
        assert jobs.run_next()

    # Then its retry is kept in the outbox, with its retry count, rather than lost with the acknowledgement
    [row] = OutboxMessage.objects.all()
    assert row.message["message_id"] == message.message_id
    assert row.message["options"]["retries"] == 1
    assert row.delay == 1000

    # And once the broker answers, the relay sends it and the job runs to its end
    assert outbox_relay(older_than=timedelta(0)) == 1
    perform_jobs()
    assert attempts == ["k", "k", "k"]
    assert not DeadLetter.objects.exists()
