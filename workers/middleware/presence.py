"""Worker presence: each worker process says it is alive, what it runs, and how much it has done.

Dramatiq's Redis heartbeats cannot serve: every process that sends a message (the web app,
the scheduler) beats there too, so they count everything connected to the broker.

Recording costs a job nothing over the network: the worker threads only note in this process's
memory which job they start and finish; a thread of the middleware's own publishes that, with
the jobs the worker holds waiting, to a key per worker process that expires unless renewed.
Every ``INTERVAL`` seconds it stamps the process's name in a sorted set (which says who is
alive, and when each last beat), and writes the state again only when it changed, or every
``REWRITE_BEATS`` beats so that it outlives no live worker: an idle worker costs one command a
beat. The console's pages read those keys only.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections import Counter
from datetime import UTC, datetime

import dramatiq
from dramatiq.logging import get_logger
from dramatiq.middleware import Middleware

from workers.dramatiq_internals.worker import consumed_queues, waiting_messages
from workers.platform_redis import platform_client, platform_namespace

#: Seconds between two beats of a worker process; one unheard for three beats counts as gone.
INTERVAL = 2.0
#: An unchanged state is written again every this many beats (it expires after twice as many).
REWRITE_BEATS = 5
#: The most waiting jobs a worker lists in its state (it says how many there are in all).
WAITING_LISTED = 100


def presence_key(broker: dramatiq.Broker) -> str:
    return f"{platform_namespace(broker)}:backoffice:workers"


def state_key(broker: dramatiq.Broker, name: str) -> str:
    """The hash in which the worker process ``name`` (host:pid) publishes its state."""
    return f"{platform_namespace(broker)}:backoffice:worker:{name}"


def live_workers(broker: dramatiq.Broker | None = None) -> int | None:
    """Worker processes heard from within the last three beats (None on the StubBroker)."""
    broker = broker or dramatiq.get_broker()
    client = platform_client(broker)
    if client is None:
        return None
    now_ms = int(time.time() * 1000)
    return client.zcount(presence_key(broker), now_ms - int(3 * INTERVAL * 1000), "+inf")


def worker_states(broker: dramatiq.Broker) -> list[dict]:
    """The published state of every live worker process, by host and pid."""
    client = platform_client(broker)
    if client is None:
        return []
    now_ms = int(time.time() * 1000)
    beats = client.zrangebyscore(presence_key(broker), now_ms - 3 * INTERVAL * 1000, "+inf", withscores=True)
    pipe = client.pipeline(transaction=False)
    for name, _beat in beats:
        pipe.get(state_key(broker, name.decode()))
    states = []
    for (_name, beat), raw in zip(beats, pipe.execute(), strict=True):
        if raw:
            states.append({**json.loads(raw), "beat_at": beat / 1000})  # the last beat, not the last write
    return sorted(states, key=lambda state: (state["host"], state["pid"]))


def running_by_queue(broker: dramatiq.Broker) -> Counter | None:
    """How many jobs the live worker processes run, by queue (None on the StubBroker)."""
    if platform_client(broker) is None:
        return None
    return Counter(job["queue_name"] for state in worker_states(broker) for job in state["running"])


class WorkerPresence(Middleware):
    """Each worker process writes its name and the time to a sorted set, and its state (host, pid,
    queues, threads, Dramatiq worker id, running and waiting jobs, jobs done) to a key when it
    changed, every ``INTERVAL`` seconds from a thread of its own; it removes
    both when it shuts down. On the StubBroker it does nothing. A beat that fails is logged once
    per outage (a warning with the error), and the first beat that succeeds again says so."""

    def __init__(self) -> None:
        self.logger = get_logger(__name__, type(self))
        #: Whether the last beat failed: an outage is logged when it starts and when it ends.
        self.failing = False
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None
        self.worker = None
        self.started_at = time.time()
        #: Message id -> the job a worker thread runs now; written by the worker threads only.
        self.running: dict[str, dict] = {}
        self.done = 0
        self.beats = 0
        self.published: str | None = None
        self.published_beat = 0

    def after_worker_boot(self, broker, worker) -> None:
        if platform_client(broker) is None:
            return
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.worker = worker
        self.started_at = time.time()
        self.stopped.clear()
        self._try_beat(broker)  # Redis away at boot: the thread keeps trying
        self.thread = threading.Thread(target=self._beating, args=(broker,), name="worker-presence", daemon=True)
        self.thread.start()

    def before_worker_shutdown(self, broker, worker) -> None:
        client = platform_client(broker)
        if client is None:
            return
        self.stopped.set()
        if self.thread is not None:
            self.thread.join(timeout=INTERVAL)  # a beat under way must not write the name back
        pipe = client.pipeline()
        pipe.zrem(presence_key(broker), self.name)
        pipe.delete(state_key(broker, self.name))
        pipe.execute()

    def before_process_message(self, broker, message) -> None:
        self.running[message.message_id] = {
            "message_id": message.message_id,
            "actor_name": message.actor_name,
            "queue_name": message.queue_name,
            "attempt": message.options.get("retries", 0) + 1,
            "started_at": time.time(),
        }

    def after_process_message(self, broker, message, *, result=None, exception=None) -> None:
        if self.running.pop(message.message_id, None) is not None:
            self.done += 1

    def after_skip_message(self, broker, message) -> None:
        self.running.pop(message.message_id, None)

    def _beating(self, broker) -> None:
        while not self.stopped.wait(INTERVAL):
            self._try_beat(broker)

    def _try_beat(self, broker) -> None:
        """Beat; a failure is logged when an outage starts, and the first beat after it says so."""
        try:
            self._beat(broker)
        except Exception as error:  # noqa: BLE001 - Redis away for a moment: the next beat tries again
            if not self.failing:
                self.logger.warning(
                    "Worker %s could not publish its presence; trying again every %.0f s: %s: %s",
                    self.name,
                    INTERVAL,
                    type(error).__name__,
                    error,
                )
            self.failing = True
            return
        if self.failing:
            self.logger.info("Worker %s publishes its presence again.", self.name)
            self.failing = False

    def _state(self, broker) -> dict:
        waiting = waiting_messages(self.worker) if self.worker is not None else []
        return {
            "name": self.name,
            "host": self.name.rpartition(":")[0],
            "pid": int(self.name.rpartition(":")[2]),
            "worker_id": getattr(broker, "broker_id", ""),
            "queues": consumed_queues(self.worker) if self.worker is not None else [],
            "threads": getattr(self.worker, "worker_threads", 0),
            "started_at": self.started_at,
            "done": self.done,
            "running": list(self.running.values()),
            "waiting_count": len(waiting),
            "waiting": [
                {
                    "message_id": message.message_id,
                    "actor_name": message.actor_name,
                    "queue_name": message.queue_name,
                    "attempt": message.options.get("retries", 0) + 1,
                }
                for message in waiting[:WAITING_LISTED]
            ],
        }

    def _beat(self, broker) -> None:
        now_ms = int(time.time() * 1000)
        state = json.dumps(self._state(broker))
        self.beats += 1
        pipe = platform_client(broker).pipeline(transaction=False)
        pipe.zadd(presence_key(broker), {self.name: now_ms})
        if self.beats % (2 * REWRITE_BEATS) == 1:
            pipe.zremrangebyscore(presence_key(broker), "-inf", now_ms - int(10 * INTERVAL * 1000))
        rewrite = state != self.published or self.beats - self.published_beat >= REWRITE_BEATS
        if rewrite:
            pipe.set(state_key(broker, self.name), state, px=int(2 * REWRITE_BEATS * INTERVAL * 1000))
        pipe.execute()
        if rewrite:
            self.published, self.published_beat = state, self.beats


def as_datetime(timestamp: float) -> datetime:
    """A published time (seconds since the epoch) as an aware datetime."""
    return datetime.fromtimestamp(timestamp, tz=UTC)
