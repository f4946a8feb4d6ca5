"""Queue statistics for the dashboard: waiting, delayed, in progress and dead messages per queue."""

from __future__ import annotations

from dataclasses import dataclass

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from workers import queues
from workers.dramatiq_internals.keys import acks_pattern, dq_name, queue_key, xq_name
from workers.middleware.presence import live_worker_count


@dataclass(frozen=True)
class QueueStats:
    name: str
    weight: int
    ready: int
    delayed: int
    in_progress: int | None  # None where the broker cannot tell
    dead: int


def queue_stats(broker: dramatiq.Broker | None = None) -> list[QueueStats]:
    """One row per configured queue, heaviest first."""
    broker = broker or dramatiq.get_broker()
    weights = queues.weights()
    return [QueueStats(name, weights[name], *_counts(broker, name)) for name in queues.names()]


def live_workers(broker: dramatiq.Broker | None = None) -> int | None:
    """Worker processes that said they are alive lately (Redis only; None elsewhere)."""
    broker = broker or dramatiq.get_broker()
    if not isinstance(broker, RedisBroker):
        return None
    return live_worker_count(broker)


def _counts(broker: dramatiq.Broker, name: str) -> tuple[int, int, int | None, int]:
    if isinstance(broker, RedisBroker):
        pipe = broker.client.pipeline(transaction=False)
        pipe.llen(queue_key(broker, name))
        pipe.llen(queue_key(broker, dq_name(name)))
        pipe.zcard(queue_key(broker, xq_name(name)))
        ready, delayed, dead = pipe.execute()
        acks = broker.client.scan_iter(match=acks_pattern(broker, queue_name=name), count=1000)
        return ready, delayed, sum(broker.client.scard(ack) for ack in acks), dead
    if isinstance(broker, RabbitmqBroker):
        ready, delayed, dead = broker.get_queue_message_counts(name)
        return ready, delayed, None, dead
    if isinstance(broker, StubBroker):
        return (
            broker.queues[name].qsize() if name in broker.queues else 0,
            broker.queues[dq_name(name)].qsize() if dq_name(name) in broker.queues else 0,
            None,
            len(broker.dead_letters_by_queue.get(name, [])),
        )
    return 0, 0, None, 0
