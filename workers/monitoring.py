"""Queue statistics and delayed jobs for the console, read from the broker and the workers' published state.

On Redis a job is in exactly one of these places: ready in its queue; scheduled in the delay
queue ``<queue>.DQ`` or, taken from there, in a live worker's memory until its eta (in that
worker's ``.DQ`` ack set); running, as the workers publish it; fetched by a live worker and
waiting in its memory (prefetched); held by a dead worker until housekeeping puts it back
(orphaned); or dead-lettered. Retrying jobs are the scheduled ones that failed before.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from workers import queues
from workers.dramatiq_internals.holdings import AckSet, ack_sets, ack_sets_by_queue, live_worker_ids
from workers.dramatiq_internals.keys import REDIS_ID_OPTION, dq_name, messages_key, queue_key, xq_name
from workers.dramatiq_internals.lanes import waiting_in_lanes
from workers.middleware.presence import live_worker_count, worker_states
from workers.platform_redis import platform_client
from workers.signing import unwrap

#: Where a delayed job waits when no worker has taken it yet.
IN_DELAY_QUEUE = "delay queue"
#: The most delayed jobs of one queue read to find some by id (``workers.cancellation.delayed_jobs``).
READ_LIMIT = 10_000
#: The most delayed jobs of one queue whose bodies the queue counts read, on every refresh, to tell
#: the retrying ones; past it, "retrying" is unknown (the queues page says n/a).
RETRYING_READ_LIMIT = 1_000


@dataclass(frozen=True)
class QueueStats:
    name: str
    weight: int
    ready: int
    scheduled: int
    retrying: int | None  # None where the broker cannot tell
    running: int | None
    prefetched: int | None
    orphaned: int | None
    dead: int
    latency: float | None  # seconds the oldest ready job has waited, None when none waits


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


def queue_stats(broker: dramatiq.Broker | None = None) -> list[QueueStats]:
    """One row per configured queue, heaviest first.

    On Redis it costs the same with 100 or 100,000 jobs waiting: one SCAN for the workers' ack
    sets, one pipeline of lengths per queue; bodies are read only to count the retrying jobs of
    a queue with at most ``RETRYING_READ_LIMIT`` delayed.
    """
    broker = broker or dramatiq.get_broker()
    weights = queues.weights()
    running = _running_by_queue(broker)
    holdings = _Holdings.of(broker) if isinstance(broker, RedisBroker) else None
    return [QueueStats(name, weights[name], **_counts(broker, name, running, holdings)) for name in queues.names()]


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
        every = [message for name in names for message in _delayed(broker, name)]
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
        found.extend(_delayed(broker, name))
    found.sort(key=lambda message: (message.eta or datetime.max.replace(tzinfo=UTC), message.message_id))
    return found[:limit]


def live_workers(broker: dramatiq.Broker | None = None) -> int | None:
    """Worker processes that said they are alive lately (None on the StubBroker)."""
    broker = broker or dramatiq.get_broker()
    if platform_client(broker) is None:
        return None
    return live_worker_count(broker)


def _running_by_queue(broker: dramatiq.Broker) -> Counter | None:
    if platform_client(broker) is None:
        return None
    return Counter(job["queue_name"] for state in worker_states(broker) for job in state["running"])


@dataclass(frozen=True)
class _Holdings:
    """The workers' ack sets by queue name and which workers are alive, read once for all queues."""

    by_queue: dict[str, list[AckSet]]
    live: set[str]

    @classmethod
    def of(cls, broker: RedisBroker) -> _Holdings:
        return cls(ack_sets_by_queue(broker), live_worker_ids(broker))

    def live_delay_sets(self, name: str) -> list[AckSet]:
        """The ack sets in which live workers hold delayed jobs of ``name``, in a stable order."""
        held = self.by_queue.get(dq_name(name), [])
        return sorted((acks for acks in held if acks.worker_id in self.live), key=lambda acks: acks.key)


def _counts(broker: dramatiq.Broker, name: str, running: Counter | None, holdings: _Holdings | None) -> dict:
    counts = {"running": running[name] if running is not None else None, "prefetched": None, "orphaned": None}
    if isinstance(broker, RedisBroker):
        return {**counts, **_redis_counts(broker, name, counts["running"] or 0, holdings or _Holdings.of(broker))}
    if isinstance(broker, RabbitmqBroker):
        ready, scheduled, dead = broker.get_queue_message_counts(name)
        return {**counts, "ready": ready, "scheduled": scheduled, "retrying": None, "dead": dead, "latency": None}
    if isinstance(broker, StubBroker):
        delayed = _delayed(broker, name)
        return {
            **counts,
            "ready": broker.queues[name].qsize() if name in broker.queues else 0,
            "scheduled": len(delayed),
            "retrying": sum(message.retrying for message in delayed),
            "dead": len(broker.dead_letters_by_queue.get(name, [])),
            "latency": None,
        }
    return {**counts, "ready": 0, "scheduled": 0, "retrying": None, "dead": 0, "latency": None}


def _redis_counts(broker: RedisBroker, name: str, running: int, holdings: _Holdings) -> dict:
    client = broker.client
    live = holdings.live
    held = holdings.by_queue.get(name, [])
    held_delayed = holdings.by_queue.get(dq_name(name), [])
    pipe = client.pipeline(transaction=False)
    pipe.llen(queue_key(broker, name))
    pipe.llen(queue_key(broker, dq_name(name)))
    pipe.zcard(queue_key(broker, xq_name(name)))
    pipe.lindex(queue_key(broker, name), 0)
    for acks in held + held_delayed:
        pipe.scard(acks.key)
    ready, waiting_delayed, dead, oldest, *sizes = pipe.execute()
    ready += waiting_in_lanes(client, broker.namespace, name)
    by_holder = list(zip(held + held_delayed, sizes, strict=True))
    taken = sum(size for acks, size in by_holder[: len(held)] if acks.worker_id in live)
    scheduled = waiting_delayed + sum(size for acks, size in by_holder[len(held) :] if acks.worker_id in live)
    orphaned = sum(size for acks, size in by_holder if acks.worker_id not in live)
    retrying = None
    if scheduled <= RETRYING_READ_LIMIT:
        retrying = sum(message.retrying for message in _delayed(broker, name))
    return {
        "ready": ready,
        "scheduled": scheduled,
        "retrying": retrying,
        "prefetched": max(0, taken - running),
        "orphaned": orphaned,
        "dead": dead,
        "latency": _waited(client.hget(messages_key(broker, name), oldest)) if oldest else None,
    }


def _waited(data: bytes | None) -> float | None:
    """Seconds since the job in ``data`` was sent, or last failed and was sent again."""
    fields = unwrap(data) if data else None
    if not isinstance(fields, dict):
        return None
    options = fields.get("options") or {}
    since_ms = options.get("requeue_timestamp") or fields.get("message_timestamp")
    return max(0.0, time.time() - since_ms / 1000) if isinstance(since_ms, int | float) else None


def _delayed(broker: dramatiq.Broker, name: str) -> list[DelayedMessage]:
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
    holdings = _Holdings.of(broker)
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
