"""Queue counts for the console: how many jobs of each queue are ready, scheduled, running, held or dead.

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

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from workers import queues
from workers.delayed_jobs import queue_delayed
from workers.dramatiq_internals.holdings import Holdings
from workers.dramatiq_internals.keys import dq_name, messages_key, queue_key, xq_name
from workers.dramatiq_internals.lanes import waiting_in_lanes
from workers.middleware.presence import running_by_queue
from workers.signing import unwrap

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


def queue_stats(broker: dramatiq.Broker | None = None) -> list[QueueStats]:
    """One row per configured queue, heaviest first.

    On Redis it costs the same with 100 or 100,000 jobs waiting: one SCAN for the workers' ack
    sets, one pipeline of lengths per queue; bodies are read only to count the retrying jobs of
    a queue with at most ``RETRYING_READ_LIMIT`` delayed.
    """
    broker = broker or dramatiq.get_broker()
    weights = queues.weights()
    running = running_by_queue(broker)
    holdings = Holdings.of(broker) if isinstance(broker, RedisBroker) else None
    return [QueueStats(name, weights[name], **_counts(broker, name, running, holdings)) for name in queues.names()]


def _counts(broker: dramatiq.Broker, name: str, running: Counter | None, holdings: Holdings | None) -> dict:
    counts = {"running": running[name] if running is not None else None, "prefetched": None, "orphaned": None}
    if isinstance(broker, RedisBroker):
        return {**counts, **_redis_counts(broker, name, counts["running"] or 0, holdings or Holdings.of(broker))}
    if isinstance(broker, RabbitmqBroker):
        ready, scheduled, dead = broker.get_queue_message_counts(name)
        return {**counts, "ready": ready, "scheduled": scheduled, "retrying": None, "dead": dead, "latency": None}
    if isinstance(broker, StubBroker):
        delayed = queue_delayed(broker, name)
        return {
            **counts,
            "ready": broker.queues[name].qsize() if name in broker.queues else 0,
            "scheduled": len(delayed),
            "retrying": sum(message.retrying for message in delayed),
            "dead": len(broker.dead_letters_by_queue.get(name, [])),
            "latency": None,
        }
    return {**counts, "ready": 0, "scheduled": 0, "retrying": None, "dead": 0, "latency": None}


def _redis_counts(broker: RedisBroker, name: str, running: int, holdings: Holdings) -> dict:
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
        retrying = sum(message.retrying for message in queue_delayed(broker, name))
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
    """Seconds the job in ``data`` has been ready: since it was sent, last failed and was sent
    again, or, for a job delayed on purpose (a retry's back-off, a deferral), since its delay ended."""
    fields = unwrap(data) if data else None
    if not isinstance(fields, dict):
        return None
    options = fields.get("options") or {}
    moments = [options.get("requeue_timestamp") or fields.get("message_timestamp"), options.get("eta")]
    since_ms = max((moment for moment in moments if isinstance(moment, int | float)), default=None)
    return None if since_ms is None else max(0.0, time.time() - since_ms / 1000)
