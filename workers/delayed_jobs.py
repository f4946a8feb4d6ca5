"""Delayed jobs for the console: the scheduled and retrying jobs of a queue, read without taking them.

A delayed job waits in its queue's delay queue ``<queue>.DQ`` until a worker takes it, then in
that worker's memory (its ``.DQ`` ack set) until its eta.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from workers import queues
from workers.dramatiq_internals.holdings import Holdings, ack_sets, live_worker_ids
from workers.dramatiq_internals.keys import REDIS_ID_OPTION, dq_name, messages_key, queue_key
from workers.signing import unwrap

#: Where a delayed job waits when no worker has taken it yet.
IN_DELAY_QUEUE = "delay queue"
#: The most delayed jobs of one queue read to find some by id (``workers.cancellation.delayed_jobs``).
READ_LIMIT = 10_000


@dataclass(frozen=True)
class DelayedMessage:
    message_id: str
    redis_message_id: str | None
    actor_name: str
    queue_name: str
    args: list
    kwargs: dict
    attempt: int
    eta: datetime | None
    error: str
    held_by: str  # IN_DELAY_QUEUE, or "worker <Dramatiq worker id>"

    @property
    def retrying(self) -> bool:
        return self.attempt > 1


@dataclass(frozen=True)
class DelayedPage:
    """A page of delayed jobs, and how many are delayed in all on the queues asked for."""

    jobs: list[DelayedMessage]
    offset: int
    total: int


def delayed_page(
    broker: dramatiq.Broker | None = None, queue_name: str | None = None, *, offset: int = 0, limit: int = 200
) -> DelayedPage:
    """``limit`` delayed jobs from ``offset``, in the order they wait, each page soonest due first.

    The order is each queue's (heaviest first): its delay queue as sent, then what its live
    workers took from it. Only the page's bodies are read, so a page costs the same with 100 or
    100,000 jobs delayed; when they all fit on one page it lists them all, soonest due first.
    Redis and the StubBroker only: RabbitMQ cannot show a queue's messages without taking them.
    """
    broker = broker or dramatiq.get_broker()
    names = [queue_name] if queue_name else queues.names()
    if isinstance(broker, RedisBroker):
        found, total = _delayed_redis_page(broker, names, offset, limit)
    else:
        every = [message for name in names for message in queue_delayed(broker, name)]
        found, total = every[offset : offset + limit], len(every)
    found.sort(key=lambda message: (message.eta or datetime.max.replace(tzinfo=UTC), message.message_id))
    return DelayedPage(found, offset, total)


def delayed_messages(
    broker: dramatiq.Broker | None = None, queue_name: str | None = None, limit: int = 200
) -> list[DelayedMessage]:
    """The delayed jobs (scheduled or retrying) of one queue or all, soonest due first, at most ``limit``.

    Redis only: RabbitMQ cannot show a queue's messages without taking them.
    """
    broker = broker or dramatiq.get_broker()
    names = [queue_name] if queue_name else queues.names()
    found: list[DelayedMessage] = []
    for name in names:
        found.extend(queue_delayed(broker, name))
    found.sort(key=lambda message: (message.eta or datetime.max.replace(tzinfo=UTC), message.message_id))
    return found[:limit]


def queue_delayed(broker: dramatiq.Broker, name: str) -> list[DelayedMessage]:
    """Every delayed job of the queue ``name``, in the order they wait (Redis and the StubBroker; none elsewhere)."""
    if isinstance(broker, StubBroker):
        pending = broker.queues.get(dq_name(name))
        bodies = list(pending.queue) if pending is not None else []
        return [m for m in (_delayed_message(body, IN_DELAY_QUEUE) for body in bodies) if m is not None]
    if not isinstance(broker, RedisBroker):
        return []
    client = broker.client
    live = live_worker_ids(broker)
    holders = [(IN_DELAY_QUEUE, client.lrange(queue_key(broker, dq_name(name)), 0, READ_LIMIT - 1))]
    for acks in ack_sets(broker, dq_name(name)):
        if acks.worker_id in live:
            holders.append((f"worker {acks.worker_id}", sorted(client.smembers(acks.key))))
    found = []
    for held_by, ids in holders:
        for start in range(0, len(ids), 500):
            bodies = client.hmget(messages_key(broker, dq_name(name)), ids[start : start + 500])
            found.extend(m for m in (_delayed_message(body, held_by) for body in bodies if body) if m is not None)
    return found


def _delayed_redis_page(
    broker: RedisBroker, names: list[str], offset: int, limit: int
) -> tuple[list[DelayedMessage], int]:
    """The page's delayed jobs and the count of all: lengths first, then only the page's ids and bodies."""
    client = broker.client
    holdings = Holdings.of(broker)
    holders = []  # (queue, held by, ack set or None for the delay queue)
    pipe = client.pipeline(transaction=False)
    for name in names:
        holders.append((name, IN_DELAY_QUEUE, None))
        pipe.llen(queue_key(broker, dq_name(name)))
        for acks in holdings.live_delay_sets(name):
            holders.append((name, f"worker {acks.worker_id}", acks))
            pipe.scard(acks.key)
    sizes = pipe.execute()
    found: list[DelayedMessage] = []
    start = 0
    for (name, held_by, acks), size in zip(holders, sizes, strict=True):
        first, last = max(offset, start) - start, min(offset + limit, start + size) - start
        start += size
        if first >= last:
            continue
        if acks is None:
            ids = client.lrange(queue_key(broker, dq_name(name)), first, last - 1)
        else:
            # A set has no order of its own: its ids sorted, the page's slice of them.
            ids = sorted(client.smembers(acks.key))[first:last]
        bodies = client.hmget(messages_key(broker, dq_name(name)), ids) if ids else []
        found.extend(m for m in (_delayed_message(body, held_by) for body in bodies if body) if m is not None)
    return found, start


def _delayed_message(data: bytes, held_by: str) -> DelayedMessage | None:
    """A delayed job as the console shows it; None for a body that is no message (its worker refuses it)."""
    fields = unwrap(data)
    if not isinstance(fields, dict) or not isinstance(fields.get("options"), dict):
        return None
    options = fields["options"]
    eta = options.get("eta")
    return DelayedMessage(
        message_id=str(fields.get("message_id", "")),
        redis_message_id=options.get(REDIS_ID_OPTION),
        actor_name=str(fields.get("actor_name", "")),
        queue_name=str(fields.get("queue_name", "")).removesuffix(".DQ"),
        args=fields.get("args") or [],
        kwargs=fields.get("kwargs") or {},
        attempt=int(options.get("retries") or 0) + 1,
        eta=datetime.fromtimestamp(eta / 1000, tz=UTC) if isinstance(eta, int | float) else None,
        error=_last_error(options),
        held_by=held_by,
    )


def _last_error(options: dict) -> str:
    """The last line of the traceback the job's last failure left (its exception), or its ``error`` option."""
    text = options.get("traceback") or options.get("error") or ""
    lines = [line for line in str(text).splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""
