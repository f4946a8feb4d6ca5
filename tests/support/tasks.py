"""Test-only actors that record what happened to them in Redis, shared with the test process."""

from __future__ import annotations

import json
import os
import signal
import time

import dramatiq
import redis
from django.conf import settings

from tests.support import flow_tasks  # noqa: F401 - its actors load with these
from workers.errors import PermanentError


def store() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def record(key: str, **fields) -> None:
    store().rpush(key, json.dumps({"at": time.time(), **fields}))


def recorded(key: str) -> list[dict]:
    return [json.loads(item) for item in store().lrange(key, 0, -1)]


@dramatiq.actor(queue_name="default")
def noop(key: str) -> None:
    record(key)


@dramatiq.actor(queue_name="default", max_retries=2, retry_backoff=lambda retries: 2 * (retries + 1))
def flaky(key: str, failures: int) -> None:
    """Fails its first ``failures`` attempts, on the schedule 2 * (retries + 1) seconds."""
    record(key)
    if len(recorded(key)) <= failures:
        raise ConnectionError("the far side is down")


@dramatiq.actor(queue_name="default")
def record_exhausted(key: str, message_id: str, error: str) -> None:
    record(f"{key}:exhausted", message_id=message_id, error=error)


@dramatiq.actor(
    queue_name="default",
    max_retries=1,
    retry_backoff=lambda retries: 0.2,
    on_retries_exhausted=record_exhausted,
)
def always_fails(*, key: str) -> None:
    record(key)
    raise ConnectionError("still down")


class CardExpired(PermanentError):
    pass


@dramatiq.actor(queue_name="default", max_retries=5, retry_backoff=lambda retries: 0.1, discard=(KeyError,))
def refuses(key: str, kind: str) -> None:
    record(key)
    if kind == "permanent":
        raise CardExpired("card expired")
    raise KeyError("listed in discard")


@dramatiq.actor(queue_name="low")
def slow(key: str, seconds: float) -> None:
    started = time.time()
    time.sleep(seconds)
    record(key, started=started)


@dramatiq.actor(queue_name="default", unique="until_executed", max_retries=2, retry_backoff=lambda retries: 0.1)
def unique_flaky(key: str, failures: int = 0) -> None:
    """A unique job that fails its first ``failures`` attempts."""
    record(key)
    if len(recorded(key)) <= failures:
        raise ConnectionError("the far side is down")


@dramatiq.actor(queue_name="default", unique="until_executed", unique_key=lambda order_id, note="": str(order_id))
def unique_per_order(order_id: int, note: str = "") -> None:
    record(f"order-{order_id}", note=note)


@dramatiq.actor(queue_name="default", unique="until_started")
def unique_until_started(key: str) -> None:
    """Records whether a twin sent while this one runs is queued (it should be)."""
    try:
        unique_until_started.send(key)
        record(key, twin="queued")
    except Exception as error:
        record(key, twin=type(error).__name__)


@dramatiq.actor(queue_name="default", unique="while_executing", unique_requeue_delay=200)
def unique_exclusive(key: str, seconds: float) -> None:
    started = time.time()
    time.sleep(seconds)
    record(key, started=started, ended=time.time())


@dramatiq.actor(queue_name="low", unique="until_executed", unique_ttl=5000)
def unique_slow(key: str, seconds: float) -> None:
    time.sleep(seconds)
    record(key)


@dramatiq.actor(queue_name="default", max_retries=2, retry_backoff=lambda retries: 0.2)
def batch_member(key: str, number: int, failures: int) -> None:
    """A batch job that fails its first ``failures`` attempts (a failure for good past 2 retries)."""
    record(f"{key}:{number}")
    if len(recorded(f"{key}:{number}")) <= failures:
        raise ConnectionError("try again")


@dramatiq.actor(queue_name="default")
def batch_complete(batch_id: int) -> None:
    record(f"batch-{batch_id}:complete")


@dramatiq.actor(queue_name="default")
def batch_success(batch_id: int) -> None:
    record(f"batch-{batch_id}:success")


@dramatiq.actor(queue_name="default", max_retries=5)
def kills_its_worker(key: str) -> None:
    """Takes its worker process down with it, as the OOM killer or a crashing C extension would."""
    record(key, pid=os.getpid())
    os.kill(os.getpid(), signal.SIGKILL)


@dramatiq.actor(
    queue_name="default", unique="until_executed", unique_ttl=2000, max_retries=1, retry_backoff=lambda retries: 6
)
def unique_retried_later(key: str) -> None:
    """A unique job (lock expiry 2 s) whose first attempt fails and whose retry waits 6 s."""
    record(key)
    if len(recorded(key)) == 1:
        raise ConnectionError("the far side is down")


@dramatiq.actor(queue_name="urgent", max_retries=3, retry_backoff=lambda retries: 1200)
def gateway_down(key: str) -> None:
    """Fails every attempt and is retried twenty minutes later, as a payment is while its gateway is down."""
    record(key)
    raise ConnectionError("the gateway is down")
