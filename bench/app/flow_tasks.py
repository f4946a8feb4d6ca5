"""The flow_control scenario's actors: each notes its start (and end) in the bench Redis, with its deferrals."""

from __future__ import annotations

import json
import time

import dramatiq
from dramatiq.middleware import CurrentMessage

from bench.workloads.counter import client
from workers import queues


def _note(key: str, **fields) -> None:
    message = CurrentMessage.get_current_message()
    options = message.options if message else {}
    fields |= {"retries": options.get("retries", 0), "deferrals": options.get("flow_deferrals", 0)}
    client().rpush(key, json.dumps(fields))


def _group(group: str, *args) -> str:
    return group


@dramatiq.actor(queue_name=queues.DEFAULT, max_retries=0, concurrency=(_group, 2))
def flow_pair(group: str, seconds: float) -> None:
    started = time.time()
    time.sleep(seconds)
    _note("flow:pairs", group=group, started=started, ended=time.time())


@dramatiq.actor(queue_name=queues.DEFAULT, max_retries=0)
def flow_free(group: str, seconds: float) -> None:
    """``flow_pair`` without its limit: what the same jobs take on the same workers unlimited."""
    started = time.time()
    time.sleep(seconds)
    _note("flow:pairs", group=group, started=started, ended=time.time())


@dramatiq.actor(queue_name=queues.DEFAULT, max_retries=0, rate=("bench-rate", "60/m"))
def flow_rated() -> None:
    _note("flow:rated", started=time.time())


@dramatiq.actor(queue_name=queues.DEFAULT, max_retries=0, concurrency=(_group, 2))
def flow_fair(group: str, seconds: float, sent_at: float) -> None:
    _note("flow:fair", group=group, started=time.time(), sent_at=sent_at)
    time.sleep(seconds)


@dramatiq.actor(queue_name=queues.DEFAULT, max_retries=3, concurrency=(_group, 2))
def flow_hold(group: str, seconds: float, job: int) -> None:
    first = client().set(f"flow:held:{job}", 1, nx=True)
    _note("flow:held", group=group, job=job, started=time.time())
    if first:
        time.sleep(seconds)


@dramatiq.actor(queue_name=queues.LOW, max_retries=0)
def flow_slow(seconds: float) -> None:
    client().incr("flow:slow:started")
    time.sleep(seconds)


@dramatiq.actor(queue_name=queues.URGENT, max_retries=0)
def flow_urgent(sent_at: float) -> None:
    _note("flow:urgent", started=time.time(), sent_at=sent_at)


@dramatiq.actor(queue_name=queues.DEFAULT, max_retries=0)
def flow_idle(sent_at: float) -> None:
    _note("flow:idle", started=time.time(), sent_at=sent_at)
