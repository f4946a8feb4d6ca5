"""Platform middleware: one lookup rule for job options, a job log of jobs that really start, metrics and presence."""

from __future__ import annotations

import logging

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker

from tests.support import tasks
from workers.middleware.options import option
from workers.middleware.presence import WorkerPresence
from workers.middleware.retries import Retries
from workers.middleware.statsd import StatsdMetrics
from workers.middleware.unique import UniqueJobs
from workers.unique_locks import FIRST

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker() -> StubBroker:
    broker = StubBroker(middleware=[Retries()])
    dramatiq.actor(lambda: None, actor_name="tuned", broker=broker, max_retries=4)
    return broker


def test_an_option_is_the_messages_then_the_actors_then_the_default(broker):
    plain = dramatiq.Message(queue_name="default", actor_name="tuned", args=(), kwargs={}, options={})
    overridden = plain.copy(options={"max_retries": 1})

    assert option(broker, overridden, "max_retries", 20) == 1
    assert option(broker, plain, "max_retries", 20) == 4
    assert option(broker, plain, "max_crashes", 3) == 3


def test_an_unknown_actor_and_an_unset_option_give_the_default(broker):
    stranger = dramatiq.Message(queue_name="default", actor_name="elsewhere", args=(), kwargs={}, options={})
    unset = stranger.copy(actor_name="tuned", options={"max_retries": None})

    assert option(broker, stranger, "max_retries", 20) == 20
    assert option(broker, unset, "max_retries", 20) == 4


def test_a_while_executing_job_put_back_for_its_running_twin_is_not_logged_as_started(jobs, redis_client, caplog):
    # Given a while_executing job whose twin holds the lock
    sent = tasks.unique_exclusive.send("twin", 0)
    unique = next(m for m in jobs.broker.middleware if isinstance(m, UniqueJobs))
    key = unique.lock_key(jobs.broker, sent)
    unique.locks(jobs.broker).take(key, "the-twin", ttl=60_000, expires_in=60_000, where=None, how=FIRST)

    # When a worker picks it up
    with caplog.at_level(logging.INFO):
        jobs.run_next()

    # Then it goes back to wait, and the job log says nothing of it
    assert f"{sent.message_id} waits" in caplog.text
    assert "job started" not in caplog.text
    jobs.assert_enqueued(tasks.unique_exclusive, "twin", 0, count=1)

    # And once the twin is done it starts, and is logged, once
    unique.locks(jobs.broker).release(key, "the-twin")
    caplog.clear()
    with caplog.at_level(logging.INFO):
        jobs.drain()
    assert caplog.text.count(f"job started actor=unique_exclusive queue=default message_id={sent.message_id}") == 1
    assert caplog.text.count(f"job finished actor=unique_exclusive queue=default message_id={sent.message_id}") == 1


class Recorder:
    """A StatsD client that keeps what it is sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def timing(self, name: str, value: float) -> None:
        self.sent.append(("timing", name))

    def incr(self, name: str) -> None:
        self.sent.append(("incr", name))


def test_statsd_gets_a_timing_and_the_outcome_of_each_processed_job(broker):
    statsd = Recorder()
    metrics = StatsdMetrics(statsd=statsd)
    done = dramatiq.Message(queue_name="default", actor_name="tuned", args=(), kwargs={}, options={})
    skipped = done.copy()

    metrics.before_process_message(broker, done)
    metrics.after_process_message(broker, done, result=None)
    metrics.before_process_message(broker, skipped)
    metrics.after_skip_message(broker, skipped)

    assert statsd.sent == [("timing", "jobs.tuned.duration"), ("incr", "jobs.tuned.success")]


def test_a_presence_outage_is_logged_once_and_its_end_once(monkeypatch, caplog):
    # Given a worker whose beats fail three times, then succeed twice
    presence = WorkerPresence()
    outcomes = iter([ConnectionError("Redis is away")] * 3 + [None, None])

    def beat(broker) -> None:
        error = next(outcomes)
        if error is not None:
            raise error

    monkeypatch.setattr(presence, "_beat", beat)

    # When it beats five times
    with caplog.at_level(logging.INFO, logger="workers.middleware.presence"):
        for _ in range(5):
            presence._try_beat(None)

    # Then the outage has one warning naming the error, and its end one line
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage().split(": ", 1)[1] for r in warnings] == ["ConnectionError: Redis is away"]
    assert sum("publishes its presence again" in r.getMessage() for r in caplog.records) == 1
