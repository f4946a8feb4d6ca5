"""The no-op actor (and @task) on the project's own broker and middleware, found by rundramatiq's autodiscovery."""

from __future__ import annotations

import os
import signal
import time

import dramatiq
from django_tasks import task
from dramatiq.middleware import CurrentMessage

from bench.app import flow_tasks  # noqa: F401 - the flow_control scenario's actors, found with these
from bench.workloads.counter import CRASHES, RAN, client, count_job
from workers import queues
from workers.enqueue import enqueue_on_commit


@dramatiq.actor(queue_name=queues.DEFAULT)
def noop() -> None:
    count_job()


def enqueue(jobs: int) -> None:
    """Send ``jobs`` messages the way project code does (outside a transaction: at once)."""
    for _ in range(jobs):
        enqueue_on_commit(noop)


@task(queue_name=queues.DEFAULT)
def noop_task() -> None:
    """The same no-op as a task of Django's tasks API (tasks_backend scenario)."""
    count_job()


@dramatiq.actor(queue_name=queues.DEFAULT)
def work(seconds: float) -> None:
    """A job that takes a while, then notes its message id as run (recovery scenario)."""
    time.sleep(seconds)
    message = CurrentMessage.get_current_message()
    client().sadd(RAN, message.message_id)


@dramatiq.actor(queue_name=queues.URGENT)
def crash() -> None:
    """Takes its worker process down, noting when (recovery scenario)."""
    client().rpush(CRASHES, time.time())
    os.kill(os.getpid(), signal.SIGKILL)
