"""Paused queues: the ``Pause`` rows are the truth; a Redis set carries them to every worker within seconds.

A paused queue's jobs stay queued: its workers stop taking new ones (and put back those they
took and have not started), its delayed jobs still move to it when due, and they all run once it
is resumed. The set lives on the platform's Redis (the broker's, or ``REDIS_URL`` on RabbitMQ)
and always holds a marker member, so that a set Redis lost (wiped, or never written) is told
apart from "nothing paused" and loaded again from the table.
"""

from __future__ import annotations

import logging
import threading
import time

import dramatiq
import redis
from django.db import connections, transaction

from workers.models import Pause
from workers.platform_redis import platform_client, platform_namespace

logger = logging.getLogger(__name__)

#: The member every loaded set holds besides the paused queues' names (no queue is called so).
LOADED = "\x00loaded"
#: Seconds a worker trusts what it last read of the set.
REFRESH = 1.0
#: Seconds between two comparisons of the set with the table by a worker (a change Redis missed).
RESYNC = 30.0


def paused_key(broker: dramatiq.Broker) -> str:
    return f"{platform_namespace(broker)}:backoffice:paused-queues"


def paused_queues() -> set[str]:
    """The names of the paused queues, from the table."""
    return set(Pause.objects.filter(kind=Pause.Kind.QUEUE).values_list("name", flat=True))


def pause_queue(name: str, *, username: str, broker: dramatiq.Broker | None = None) -> bool:
    """Pause ``name``; False if it was paused already. Workers hear of it once the transaction commits."""
    _, created = Pause.objects.get_or_create(kind=Pause.Kind.QUEUE, name=name, defaults={"paused_by": username})
    transaction.on_commit(lambda: _mirror_change(broker or dramatiq.get_broker(), name, paused=True))
    return created


def resume_queue(name: str, *, broker: dramatiq.Broker | None = None) -> bool:
    """Resume ``name``; False if it was not paused."""
    deleted, _ = Pause.objects.filter(kind=Pause.Kind.QUEUE, name=name).delete()
    transaction.on_commit(lambda: _mirror_change(broker or dramatiq.get_broker(), name, paused=False))
    return bool(deleted)


def mirror(broker: dramatiq.Broker, names: set[str] | None = None) -> set[str]:
    """Write the table's paused queues (or ``names``, read from it) to Redis, replacing the set; return them."""
    names = paused_queues() if names is None else names
    client = platform_client(broker)
    if client is not None:
        pipe = client.pipeline()
        pipe.delete(paused_key(broker))
        pipe.sadd(paused_key(broker), LOADED, *names)
        pipe.execute()
    return names


def _mirror_change(broker: dramatiq.Broker, name: str, *, paused: bool) -> None:
    client = platform_client(broker)
    if client is None:
        return
    try:
        if not client.exists(paused_key(broker)):
            mirror(broker)  # the set was lost: the table, committed, already says the new state
        elif paused:
            client.sadd(paused_key(broker), name)
        else:
            client.srem(paused_key(broker), name)
    except redis.RedisError:
        # The row is written; workers compare the set with the table every RESYNC seconds.
        state = "paused" if paused else "resumed"
        logger.warning("Could not tell workers that queue %s is %s; they compare with the table soon.", name, state)
        return
    # Idle consumers wait for a ring, not a clock: wake them so that they see the change now.
    ring = getattr(broker, "ring", None)
    if ring is not None:
        ring(name, times=broker.doorbell_length)


class PausedQueues:
    """A worker process's view of the paused queues: the Redis set, read at most every ``REFRESH`` seconds.

    A set Redis does not hold is loaded from the table first, so pauses survive a Redis wipe; and
    every ``RESYNC`` seconds the set is compared with the table, so a change Redis missed (it was
    away when the pause was committed) still reaches the workers.
    """

    def __init__(self, broker: dramatiq.Broker) -> None:
        self.broker = broker
        self.names: frozenset[str] = frozenset()
        self.read_at = float("-inf")
        self.synced_at = float("-inf")
        self.mutex = threading.Lock()

    def __contains__(self, queue_name: str) -> bool:
        if time.monotonic() - self.read_at >= REFRESH:
            self._read()
        return queue_name in self.names

    def stale(self) -> None:
        """Read the set afresh at the next look (a doorbell rang: it may announce a pause)."""
        self.read_at = float("-inf")

    def _read(self) -> None:
        with self.mutex:
            if time.monotonic() - self.read_at < REFRESH:
                return  # another consumer thread read it while this one waited
            try:
                self.names = frozenset(self._members() - {LOADED})
            except Exception:  # noqa: BLE001 - Redis or the database away: keep the last view, read again soon
                logger.warning("Could not read the paused queues; keeping the last known ones.", exc_info=True)
            finally:
                self.read_at = time.monotonic()

    def _members(self) -> set[str]:
        client = platform_client(self.broker)
        if client is None:
            return set()
        members = {member.decode() for member in client.smembers(paused_key(self.broker))}
        if LOADED in members and time.monotonic() - self.synced_at < RESYNC:
            return members
        try:
            table = paused_queues()
        finally:
            connections.close_all()  # a consumer thread's connection: nothing else closes it
        self.synced_at = time.monotonic()
        if members != table | {LOADED}:
            mirror(self.broker, table)
        return table


_views: dict[int, PausedQueues] = {}


def paused_view(broker: dramatiq.Broker) -> PausedQueues:
    """The process's one view of ``broker``'s paused queues."""
    view = _views.get(id(broker))
    if view is None or view.broker is not broker:
        view = _views[id(broker)] = PausedQueues(broker)
    return view
