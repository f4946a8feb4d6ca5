"""The same platform on RabbitMQ: a real worker started with BROKER_URL=amqp://... runs and retries jobs."""

from __future__ import annotations

import os

import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from tests.support import tasks
from workers import queues
from workers.models import DeadLetter
from workers.testing import wait_until

RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "")

pytestmark = [
    pytest.mark.delivery,
    pytest.mark.skipif(not RABBITMQ_URL, reason="RABBITMQ_URL is not set (CI's second run sets it)"),
]


def test_a_worker_on_rabbitmq_runs_and_retries_jobs(start_worker, redis_client, redis_url):
    # Given an empty set of queues on RabbitMQ and a worker consuming them
    broker = RabbitmqBroker(url=RABBITMQ_URL, middleware=[])
    for name in queues.names():
        broker.declare_queue(name)
        broker.flush(name)
    worker = start_worker(redis_url=redis_url, env={"BROKER_URL": RABBITMQ_URL})

    # When a job that fails once is sent
    broker.enqueue(tasks.flaky.message("rabbit", 1))

    # Then the worker retries it after its 2 s back-off and it succeeds
    wait_until(lambda: len(tasks.recorded("rabbit")) == 2, timeout=30, what="two attempts on RabbitMQ")
    worker.wait_for_log(r"job finished actor=flaky .*attempt=2")
    first, second = (attempt["at"] for attempt in tasks.recorded("rabbit"))
    assert second - first >= 2.0
    broker.close()


def test_a_job_that_kills_its_worker_on_rabbitmq_is_dead_lettered_after_three_crashes(
    start_worker, redis_client, redis_url
):
    # Given supervised workers on RabbitMQ (which hands a dead consumer's messages back at once)
    broker = RabbitmqBroker(url=RABBITMQ_URL, middleware=[])
    for name in queues.names():
        broker.declare_queue(name)
        broker.flush(name)
    workers = start_worker(
        redis_url=redis_url, env={"BROKER_URL": RABBITMQ_URL}, processes=2, threads=2, supervised=True
    )
    workers.wait_for_log(r"Worker process is ready for action", count=2)

    # When a job that kills whichever worker runs it is sent, with good jobs behind it
    poison = broker.enqueue(tasks.kills_its_worker.message("rabbit-poison"))
    for number in range(10):
        broker.enqueue(tasks.noop.message(f"rabbit-good-{number}"))

    # Then it is a dead letter "crashed" after exactly three runs, and every good job ran
    wait_until(
        lambda: DeadLetter.objects.filter(message_id=poison.message_id, reason="crashed").exists(),
        timeout=120,
        what="the crashing job in the dead letters",
    )
    wait_until(
        lambda: all(tasks.recorded(f"rabbit-good-{number}") for number in range(10)), timeout=60, what="good jobs"
    )
    assert len(tasks.recorded("rabbit-poison")) == 3
    assert workers.process.poll() is None
    broker.close()
