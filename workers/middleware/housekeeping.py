"""Housekeeping: live workers take turns at the platform's periodic duties, whatever the queues hold.

Recovering a dead worker's messages and relaying the outbox used to be jobs on a queue, so a
backlog delayed them (or dropped them, past their age limit) exactly when they were needed.
Here they run in a thread of each worker process, and a short Redis lock gives each round to
one process of the whole cluster.
"""

from __future__ import annotations

import os
import socket
import threading
import time

import dramatiq
from django.conf import settings
from django.db import DatabaseError, connections
from dramatiq.logging import get_logger
from dramatiq.middleware import Middleware

from workers.platform_redis import platform_client, platform_namespace

#: The longest one housekeeping statement may run on PostgreSQL: past it the statement is cancelled,
#: its duty fails with a warning, and the next round tries again, instead of every round waiting on it.
STATEMENT_TIMEOUT_MS = 30_000


class Housekeeping(Middleware):
    """Run ``workers.housekeeping.housekeeping_round`` every ``interval`` seconds in one worker of the cluster.

    After Redis was away, live workers need a moment to beat again before their silence means
    anything, so dead workers are only recovered once this process has reached Redis for
    ``settle`` seconds without a break.

    Parameters:
      interval(float): Seconds between two rounds. Defaults to ``settings.JOB_HOUSEKEEPING_INTERVAL``.
      settle(float): Seconds of unbroken contact with Redis before dead workers are recovered.
        Defaults to two intervals.
    """

    def __init__(self, *, interval: float | None = None, settle: float | None = None) -> None:
        self.logger = get_logger(__name__, type(self))
        self.interval = interval if interval is not None else settings.JOB_HOUSEKEEPING_INTERVAL
        self.settle = settle if settle is not None else 2 * self.interval
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None
        self.reachable_since: float | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker) -> None:
        """Start the housekeeping thread (not on the StubBroker, which has no workers to recover)."""
        if platform_client(broker) is None:
            return
        self.stopped.clear()
        self.thread = threading.Thread(target=self._run, args=(broker,), name="housekeeping", daemon=True)
        self.thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker) -> None:
        """Stop the thread; a round under way finishes first."""
        self.stopped.set()
        if self.thread is not None:
            self.thread.join(timeout=30)

    def _run(self, broker: dramatiq.Broker) -> None:
        key = f"{platform_namespace(broker)}:backoffice:housekeeping"
        owner = f"{socket.gethostname()}:{os.getpid()}"
        while not self.stopped.wait(self.interval):
            try:
                self._round(broker, key, owner)
            except Exception as error:  # Redis or the database away: the next round tries again
                self.reachable_since = None
                self.logger.warning("Housekeeping round skipped: %s: %s", type(error).__name__, error)
            finally:
                connections.close_all()

    def _round(self, broker: dramatiq.Broker, key: str, owner: str) -> None:
        from workers.housekeeping import housekeeping_round  # models load after the broker is built

        client = platform_client(broker)
        now = time.monotonic()
        leads = client.set(key, owner, nx=True, px=int(self.interval * 1000 * 0.9))  # it answers: Redis is there
        if self.reachable_since is None:
            self.reachable_since = now
        if not leads:
            return
        self._bound_statements()
        done = housekeeping_round(broker=broker, recover_dead_workers=now - self.reachable_since >= self.settle)
        if done.get("outbox_relayed") or done.get("dead_workers_requeued"):
            self.logger.info("Housekeeping: %s", ", ".join(f"{name}={count}" for name, count in done.items()))

    def _bound_statements(self) -> None:
        """Cap this thread's statements on PostgreSQL (its own connection, closed after the round)."""
        database = connections["default"]
        if database.vendor != "postgresql":
            return
        try:
            with database.cursor() as cursor:
                cursor.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
        except DatabaseError as error:  # the database's own duties fail and say so; Redis's still run
            self.logger.warning("Housekeeping: database unreachable: %s: %s", type(error).__name__, error)
