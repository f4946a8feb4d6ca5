"""One listener per worker process waits on the doorbells of its idle consumers, and beats for them.

Every send rings its queue's doorbell (a short Redis list, ``redis_broker.SEND``). A consumer
with nothing to fetch does not ask Redis itself: it waits in memory (``wait``) and this
process's one listener thread blocks (``BLPOP``) on the doorbells of every idle consumer at once
and wakes the one whose queue rang, so a job sent to an idle worker starts at once. A consumer
that falls idle makes the listener listen again (a push to the process's own doorbell) only if
its queue was not among those listened to; a ring heard for a consumer that is no longer idle is
given back to the queue's doorbell, for the next idle consumer of any process.

Because idle consumers no longer fetch, the listener writes the worker's Dramatiq heartbeat
(which each fetch also writes) every third of the heartbeat timeout at most 5 s apart, and,
every ``CHECK_MS``, looks at the length of each idle consumer's queue in one pipeline and wakes
those with work a send did not ring for (a sender on Dramatiq's own broker, a ring lost with a
Redis restart). An idle worker so asks Redis a few things a second at most, whatever the number
of its queues. A stopping worker wakes every consumer at once (``stop``).
"""

from __future__ import annotations

import threading
import time

import redis
from dramatiq.logging import get_logger

from workers.dramatiq_internals.admission import pauses_reread
from workers.dramatiq_internals.keys import heartbeats_key, queue_key

#: How often the listener looks for work no ring announced, in milliseconds.
CHECK_MS = 10_000
#: The longest gap between two of the listener's heartbeats, in milliseconds.
BEAT_MS = 5_000


class Doorbells:
    """The doorbells of one worker process's idle consumers, listened to by one thread."""

    def __init__(self, broker) -> None:
        self.broker = broker
        self.logger = get_logger(__name__, type(self))
        self.mutex = threading.Lock()
        self.rung: dict[str, threading.Event] = {}
        self.idle: set[str] = set()
        self.listening: frozenset[str] = frozenset()
        self.own_key = f"{broker.namespace}:__doorbell__.{broker.broker_id}"
        self.beat_ms = min(BEAT_MS, broker.heartbeat_timeout // 3)
        self.stopped = False
        self.thread: threading.Thread | None = None

    def wait(self, queue_name: str, timeout_ms: int) -> bool:
        """Wait until ``queue_name`` rings or ``timeout_ms`` pass; True if it rang."""
        with self.mutex:
            rung = self.rung.setdefault(queue_name, threading.Event())
            self.idle.add(queue_name)
            heard = queue_name in self.listening
            if self.thread is None and not self.stopped:
                self.thread = threading.Thread(target=self._listen, name="doorbells", daemon=True)
                self.thread.start()
        try:
            if not heard:  # listen again, with this queue's doorbell too
                self.broker.client.pipeline(transaction=False).lpush(self.own_key, 1).pexpire(
                    self.own_key, 60_000
                ).execute()
            return rung.wait(max(0.001, timeout_ms / 1000))
        finally:
            rung.clear()
            with self.mutex:
                self.idle.discard(queue_name)

    def stop(self) -> None:
        """Wake every waiting consumer and end the listener (the worker is stopping)."""
        with self.mutex:
            self.stopped = True
            for rung in self.rung.values():
                rung.set()
        try:
            self.broker.client.lpush(self.own_key, 1)
        except redis.RedisError:
            pass

    def _wake(self, queue_names) -> None:
        with self.mutex:
            for name in queue_names:
                self.rung.setdefault(name, threading.Event()).set()

    def _listen(self) -> None:
        client, beat_at, checked_at = self.broker.client, 0.0, time.monotonic()
        prefix = self.broker.doorbell_key("")
        while not self.stopped:
            try:
                now = time.monotonic()
                if now - beat_at >= self.beat_ms / 1000:
                    client.zadd(heartbeats_key(self.broker), {self.broker.broker_id: int(time.time() * 1000)})
                    beat_at = now
                with self.mutex:
                    self.listening = frozenset(self.idle)
                if now - checked_at >= CHECK_MS / 1000:
                    self._check(sorted(self.listening))
                    checked_at = now
                keys = [self.own_key, *(prefix + name for name in sorted(self.listening))]
                popped = client.blpop(keys, timeout=max(0.1, min(self.beat_ms, CHECK_MS) / 1000))
                if popped is not None:
                    key = popped[0].decode()
                    if key != self.own_key:
                        self._heard(key, key[len(prefix) :])
            except Exception as error:  # noqa: BLE001 - the heartbeat must outlive any one failure
                self.logger.warning("Doorbells unheard for a moment: %s: %s", type(error).__name__, error)
                self._wake(list(self.rung))  # each consumer fetches, and meets the outage itself
                with self.mutex:
                    if not self.idle:  # nobody left to beat for: the next consumer to wait starts a listener
                        self.thread = None
                        return
                time.sleep(1)
        try:
            client.delete(self.own_key)
        except redis.RedisError:
            pass

    def _heard(self, key: str, queue_name: str) -> None:
        """Wake the consumer rung for; if it stopped waiting meanwhile, give the ring back.

        A ring is one entry every listener of the queue competes for. Kept here for a consumer
        that is busy, it would leave another process's idle consumer asleep while the job waits
        for this one to come round; given back, the next idle listener takes it.
        """
        with self.mutex:
            idle = queue_name in self.idle
        if idle:
            # A pause rings too, right after it is written: the woken consumer must not judge it
            # by the paused queues its process read a moment before.
            pauses_reread(self.broker)
            self._wake([queue_name])
        else:
            self.broker.client.pipeline(transaction=False).lpush(key, 1).pexpire(key, 60_000).execute()

    def _check(self, queue_names: list[str]) -> None:
        """Wake the idle consumers whose queue holds work no ring announced."""
        if not queue_names:
            return
        pipe = self.broker.client.pipeline(transaction=False)
        for name in queue_names:
            pipe.llen(queue_key(self.broker, name))
        self._wake([name for name, length in zip(queue_names, pipe.execute(), strict=True) if length])
