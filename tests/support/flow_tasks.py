"""Test-only limited actors: each records its start and end in Redis, with its process and attempt."""

from __future__ import annotations

import json
import os
import time

import dramatiq
import redis
from django.conf import settings
from dramatiq.middleware import CurrentMessage


def _record(key: str, **fields) -> None:
    message = CurrentMessage.get_current_message()
    options = message.options if message else {}
    fields |= {"pid": os.getpid(), "retries": options.get("retries", 0), "deferrals": options.get("flow_deferrals", 0)}
    redis.Redis.from_url(settings.REDIS_URL).rpush(key, json.dumps(fields))


def _group(key: str, group: str, *args) -> str:
    return group


@dramatiq.actor(queue_name="default", max_retries=0, concurrency=(_group, 2))
def two_per_group(key: str, group: str, seconds: float) -> None:
    """Runs ``seconds``; at most two of a group at once."""
    started = time.time()
    time.sleep(seconds)
    _record(key, group=group, started=started, ended=time.time())


@dramatiq.actor(queue_name="default", max_retries=0, rate=("test-rate", "10/2s"))
def ten_per_two_seconds(key: str) -> None:
    _record(key, started=time.time())


@dramatiq.actor(queue_name="default", max_retries=3, concurrency=(_group, 2))
def holds_a_slot(key: str, group: str, seconds: float, job: int = 0) -> None:
    """Holds one of its group's two slots for ``seconds`` on its first run, none on a later one."""
    first = redis.Redis.from_url(settings.REDIS_URL).set(f"{key}:{job}:ran", 1, nx=True)
    _record(key, group=group, job=job, started=time.time())
    if first:
        time.sleep(seconds)


@dramatiq.actor(queue_name="low", max_retries=0)
def slow_low(key: str, seconds: float) -> None:
    started = time.time()
    _record(f"{key}:started", started=started)
    time.sleep(seconds)
    _record(key, started=started, ended=time.time())


@dramatiq.actor(queue_name="urgent", max_retries=0)
def urgent(key: str) -> None:
    _record(key, started=time.time())
