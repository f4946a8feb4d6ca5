"""Retries, discards, exhaustion and malformed arguments, run through the middleware in-process."""

from __future__ import annotations

import logging

import dramatiq
import pytest
from django.contrib.auth.models import User
from dramatiq.broker import MessageProxy

from workers.errors import PermanentError
from workers.middleware.retries import RetryLogLevel, exponential_backoff
from workers.models import DeadLetter

pytestmark = pytest.mark.django_db

attempts: list[str] = []
exhausted: list[tuple] = []


def remember_exhausted(message, exception) -> None:
    exhausted.append((message.message_id, message.args, exception))


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
def never_works(key: str) -> None:
    attempts.append(key)
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


@pytest.fixture(autouse=True)
def _reset():
    attempts.clear()
    exhausted.clear()


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


def test_a_job_that_recovers_within_its_retries_succeeds_without_a_dead_letter(jobs):
    fails_twice.send("k")
    jobs.drain()
    assert attempts == ["k", "k", "k"]
    assert exhausted == []
    assert not DeadLetter.objects.exists()
    assert jobs.dead_letters == []


def test_the_exhausted_callback_gets_the_message_and_the_error_once(jobs):
    # Given an actor with one retry that always fails
    message = never_works.send("k")

    # When its retries run out
    jobs.drain()

    # Then the callback ran exactly once with that message and its last error
    assert attempts == ["k", "k"]
    assert len(exhausted) == 1
    message_id, args, error = exhausted[0]
    assert (message_id, args) == (message.message_id, ("k",))
    assert isinstance(error, TimeoutError)
    dead = DeadLetter.objects.get(message_id=message.message_id)
    assert (dead.reason, dead.attempts, dead.error) == ("exhausted", 2, "TimeoutError: slow gateway")
    assert [m.message_id for m in jobs.dead_letters] == [message.message_id]


def test_a_redelivered_exhausted_message_does_not_call_back_twice(jobs):
    # Given a message whose retries ran out
    message = never_works.send("k")
    jobs.drain()
    # When the broker delivers its last attempt again (a worker died before acknowledging it)
    jobs.broker.enqueue(message.copy(options={"retries": 1}))
    jobs.drain()
    # Then the callback is not called a second time
    assert len(exhausted) == 1
    assert DeadLetter.objects.count() == 1


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
