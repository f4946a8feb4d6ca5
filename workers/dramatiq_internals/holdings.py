"""What the Redis broker's workers hold: their ack sets, which worker each belongs to, and whether it is alive.

A message a worker fetched stays in its ack set (``keys.acks_key``) until acknowledged, whether
it runs, waits in the worker's memory, or (from a delay queue) waits there for its eta. A
worker whose Dramatiq id has not beaten within the broker's ``heartbeat_timeout`` is dead:
what its ack sets hold runs nowhere until housekeeping puts it back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from dramatiq.brokers.redis import RedisBroker

from workers.dramatiq_internals.keys import acks_key, acks_pattern, dq_name, heartbeats_key


@dataclass(frozen=True)
class AckSet:
    key: str
    worker_id: str
    queue_name: str


def ack_sets(broker: RedisBroker, queue_name: str) -> list[AckSet]:
    """Every worker's ack set of ``queue_name`` (a queue, or its ``.DQ``)."""
    return _scan(broker, acks_pattern(broker, queue_name=queue_name), queue_name)


def ack_sets_by_queue(broker: RedisBroker) -> dict[str, list[AckSet]]:
    """Every worker's ack sets, by queue (and ``.DQ``) name: one SCAN for all of them."""
    found: dict[str, list[AckSet]] = {}
    for acks in _scan(broker, acks_pattern(broker)):
        found.setdefault(acks.queue_name, []).append(acks)
    return found


def _scan(broker: RedisBroker, pattern: str, queue_name: str | None = None) -> list[AckSet]:
    prefix = acks_key(broker, "", "")[:-1]  # "<ns>:__acks__."
    found = []
    for raw in broker.client.scan_iter(match=pattern, count=1000):
        key = raw.decode() if isinstance(raw, bytes) else raw
        # Dramatiq's worker ids are UUIDs (no dots); the queue's name is the rest.
        worker_id, _, name = key[len(prefix) :].partition(".")
        if queue_name is None or name == queue_name:
            found.append(AckSet(key, worker_id, name))
    return found


def live_worker_ids(broker: RedisBroker) -> set[str]:
    """The Dramatiq ids of the broker's processes that beat within its heartbeat timeout."""
    now_ms = int(time.time() * 1000)
    alive = broker.client.zrangebyscore(heartbeats_key(broker), now_ms - broker.heartbeat_timeout, "+inf")
    return {worker_id.decode() if isinstance(worker_id, bytes) else worker_id for worker_id in alive}


@dataclass(frozen=True)
class Holdings:
    """The workers' ack sets by queue name and which workers are alive, read once for all queues."""

    by_queue: dict[str, list[AckSet]]
    live: set[str]

    @classmethod
    def of(cls, broker: RedisBroker) -> Holdings:
        return cls(ack_sets_by_queue(broker), live_worker_ids(broker))

    def live_delay_sets(self, name: str) -> list[AckSet]:
        """The ack sets in which live workers hold delayed jobs of ``name``, in a stable order."""
        held = self.by_queue.get(dq_name(name), [])
        return sorted((acks for acks in held if acks.worker_id in self.live), key=lambda acks: acks.key)
