"""Worker presence: each worker process says it is alive, so the dashboard counts workers, not clients.

Dramatiq's Redis heartbeats cannot serve: every process that sends a message (the web app,
the scheduler) beats there too, so they count everything connected to the broker.
"""

from __future__ import annotations

import os
import socket
import threading
import time

from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware

#: Seconds between two beats of a worker process; one unheard for three beats counts as gone.
INTERVAL = 5.0


def presence_key(broker: RedisBroker) -> str:
    return f"{broker.namespace}:backoffice:workers"


def live_worker_count(broker: RedisBroker) -> int:
    """Worker processes heard from within the last three beats."""
    now_ms = int(time.time() * 1000)
    return broker.client.zcount(presence_key(broker), now_ms - int(3 * INTERVAL * 1000), "+inf")


class WorkerPresence(Middleware):
    """On Redis, each worker process writes its name and the time to a sorted set every ``INTERVAL``
    seconds from a thread of its own, and removes itself when it shuts down. Elsewhere it does
    nothing: RabbitMQ tells its consumers itself."""

    def __init__(self) -> None:
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    def after_worker_boot(self, broker, worker) -> None:
        if not isinstance(broker, RedisBroker):
            return
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.stopped.clear()
        self._beat(broker)
        self.thread = threading.Thread(target=self._beating, args=(broker,), name="worker-presence", daemon=True)
        self.thread.start()

    def before_worker_shutdown(self, broker, worker) -> None:
        if not isinstance(broker, RedisBroker):
            return
        self.stopped.set()
        if self.thread is not None:
            self.thread.join(timeout=INTERVAL)  # a beat under way must not write the name back
        broker.client.zrem(presence_key(broker), self.name)

    def _beating(self, broker: RedisBroker) -> None:
        while not self.stopped.wait(INTERVAL):
            try:
                self._beat(broker)
            except Exception:  # noqa: BLE001 - Redis away for a moment: the next beat tries again
                continue

    def _beat(self, broker: RedisBroker) -> None:
        now_ms = int(time.time() * 1000)
        pipe = broker.client.pipeline()
        pipe.zadd(presence_key(broker), {self.name: now_ms})
        pipe.zremrangebyscore(presence_key(broker), "-inf", now_ms - int(10 * INTERVAL * 1000))
        pipe.execute()
