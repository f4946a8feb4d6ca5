"""The recurring-job scheduler: any number may run, one leads, and each fire of a job is sent at most once.

Leading. Every scheduler tries the leader lock (``workers.leader``) every ``renew_interval``
seconds: the holder renews it, the others stand by. A leader that dies stops renewing, its lock
expires ``lock_ttl`` seconds later and a standby takes it at its next try. A lost lock or an
unreachable Redis never ends the process: it stands by, warns once, retries with back-off and
leads again when it can. What the leader sends, and how each fire is sent at most once, paused
or caught up, is ``workers.schedule_fires``.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Collection, Iterable
from datetime import timedelta

import redis

from workers.leader import LeaderLock
from workers.schedule_fires import Fires
from workers.schedules import NAMESPACE, RecurringJob

logger = logging.getLogger(__name__)

#: The longest wait, in seconds, between two tries to reach Redis.
MAX_REDIS_BACKOFF = 5.0


class Scheduler:
    """Send each recurring job when due, from whichever scheduler process leads.

    Parameters:
      client(redis.Redis): Where the lock, claims and last runs live; calls should time out well
        within ``lock_ttl``.
      jobs(Iterable[RecurringJob]): What to send and when.
      lock_ttl(float): How long the lead outlives its last renewal, in seconds.
      renew_interval(float): Seconds between renewals, and between a standby's tries.
      catch_up(timedelta): How old a missed fire may be and still be sent on leading.
      namespace(str): Prefix of the Redis keys.
      pauses(Callable): Answers the names of the paused jobs; asked every tick, so it caches.
    """

    def __init__(
        self,
        *,
        client: redis.Redis,
        jobs: Iterable[RecurringJob],
        lock_ttl: float = 10.0,
        renew_interval: float = 2.0,
        catch_up: timedelta = timedelta(hours=24),
        namespace: str = NAMESPACE,
        pauses: Callable[[], Collection[str]] | None = None,
    ) -> None:
        self.client = client
        self.jobs = list(jobs)
        self.renew_interval = renew_interval
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lock = LeaderLock(client=client, key=f"{namespace}:scheduler:leader", token=self.token, ttl=lock_ttl)
        self.fires = Fires(
            client=client,
            jobs=self.jobs,
            token=self.token,
            catch_up=catch_up,
            namespace=namespace,
            pauses=pauses or frozenset,
            longest_wait=renew_interval,
        )
        self.role = "starting"  # then "leading", "standing by", or "away" while Redis is
        self.outages = 0  # failed tries to reach Redis in a row
        self.stopping = False

    def run(self) -> None:
        """Tick until ``stop``; then give the lead up if held."""
        names = ", ".join(job.name for job in self.jobs)
        logger.info("Scheduler %s started with %d recurring jobs: %s", self.token, len(self.jobs), names)
        while not self.stopping:
            self._sleep(self.tick())
        try:
            released = self.lock.release()
        except redis.RedisError:
            released = False
        logger.info("Scheduler %s stopped%s", self.token, "; the lead is free" if released else "")

    def stop(self) -> None:
        """Ask ``run`` to return (safe from a signal handler): within a tenth of a second or a Redis call."""
        self.stopping = True

    def tick(self) -> float:
        """Lead or stand by, and send what is due; returns the seconds until the next tick."""
        try:
            held = self.lock.hold()
            if self.outages:
                logger.info("Redis is reachable again")
                self.outages = 0
            if not held:
                self._stand_by()
                return self.renew_interval
            if self.role != "leading":
                return self._lead()
            return self.fires.send_due(catching_up=False, may_send=self._may_send)[0]
        except redis.RedisError as error:
            return self._redis_away(error)

    def _may_send(self) -> bool:
        # A slow send may outlive the lease: the lock is renewed before more are sent.
        return not self.stopping and self.lock.holds()

    def _lead(self) -> float:
        self.fires.settle_recorded()
        wait, caught_up = self.fires.send_due(catching_up=True, may_send=self._may_send)
        self.role = "leading"
        caught = ", ".join(caught_up) or "none"
        logger.info("Scheduler %s leads %d recurring jobs; caught up: %s", self.token, len(self.jobs), caught)
        return wait

    def _stand_by(self) -> None:
        if self.role == "standing by":
            return
        holder = self.lock.holder() or "another scheduler"
        if self.role == "leading":
            logger.warning("Scheduler %s lost the lead to %s; standing by", self.token, holder)
        else:
            logger.info("Scheduler %s standing by: %s leads", self.token, holder)
        self.role = "standing by"

    def _redis_away(self, error: redis.RedisError) -> float:
        if not self.outages:
            doing = "stopped leading" if self.role == "leading" else "stands by"
            reason = f"{type(error).__name__}: {error}"
            logger.warning(
                "Redis is unreachable (%s): scheduler %s %s, retrying with back-off", reason, self.token, doing
            )
        self.role = "away"
        self.outages += 1
        return min(0.5 * 2 ** (self.outages - 1), max(MAX_REDIS_BACKOFF, self.renew_interval))

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.1))
