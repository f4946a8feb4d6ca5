"""The same platform on RabbitMQ: a real worker started with BROKER_URL=amqp://... runs and retries jobs."""

from __future__ import annotations

import os

import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from tests.support import tasks
from workers import queues
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
