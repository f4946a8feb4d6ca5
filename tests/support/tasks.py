"""Test-only actors that record what happened to them in Redis, shared with the test process."""

from __future__ import annotations

import json
import time

import dramatiq
import redis
from django.conf import settings

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


def record_exhausted(message, exception) -> None:
    record(f"{message.kwargs['key']}:exhausted", message_id=message.message_id, error=repr(exception))


@dramatiq.actor(
    queue_name="default",
    max_retries=1,
    retry_backoff=lambda retries: 0.2,
    on_retries_exhausted="tests.support.tasks.record_exhausted",
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
