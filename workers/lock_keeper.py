"""The lock keeper: the unique locks of the jobs running in this process stay alive until the jobs end."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from workers.unique_locks import MemoryLocks, RedisLocks

logger = logging.getLogger(__name__)


@dataclass
class _Kept:
    locks: RedisLocks | MemoryLocks
    ttl: int
    due: float


class LockKeeper:
    """Extends the locks of the jobs running in this process, each every third of its ttl (at
    most ``longest_wait`` seconds apart), from one thread started on first use, until ``stop``.

    Parameters:
      longest_wait(float): The longest time between two extensions of a lock, in seconds.
    """

    def __init__(self, *, longest_wait: float = 60.0) -> None:
        self.longest_wait = longest_wait
        self.condition = threading.Condition()
        self.kept: dict[tuple[str, str], _Kept] = {}
        self.thread: threading.Thread | None = None
        self.stopped = False

    def keep(self, locks: RedisLocks | MemoryLocks, key: str, owner: str, *, ttl: int) -> None:
        """Extend ``owner``'s lock ``key`` by ``ttl`` ms, a third of ``ttl`` at a time, until ``let_go``."""
        with self.condition:
            self.kept[(key, owner)] = _Kept(locks, ttl, time.monotonic() + self._interval(ttl))
            if self.thread is None or not self.thread.is_alive():  # not started yet, or forked
                self.stopped = False
                self.thread = threading.Thread(target=self._run, name="unique-lock-keeper", daemon=True)
                self.thread.start()
            self.condition.notify()

    def let_go(self, key: str, owner: str) -> None:
        with self.condition:
            self.kept.pop((key, owner), None)

    def stop(self, *, timeout: float = 5.0) -> None:
        with self.condition:
            self.stopped = True
            self.condition.notify()
            thread, self.thread = self.thread, None
        if thread is not None:
            thread.join(timeout)

    def _interval(self, ttl: int) -> float:
        return min(ttl / 3000, self.longest_wait)

    def _run(self) -> None:
        while (due := self._next_due()) is not None:
            for (key, owner), kept in due:
                try:
                    extended = kept.locks.extend(key, owner, ttl=kept.ttl)
                except Exception:  # noqa: BLE001 - Redis away for a moment: the next round tries again
                    logger.warning("Could not extend lock %s of message %s.", key, owner, exc_info=True)
                    continue
                if not extended and self._keeps(key, owner):
                    logger.warning("Lock %s is no longer held by message %s, which still runs.", key, owner)
                    self.let_go(key, owner)  # lost for good: it expired, or a twin holds it now

    def _next_due(self) -> list[tuple[tuple[str, str], _Kept]] | None:
        """Wait for the locks due for extension and schedule their next one; None once stopped."""
        with self.condition:
            while not self.stopped:
                now = time.monotonic()
                due = [(ident, kept) for ident, kept in self.kept.items() if kept.due <= now]
                if due:
                    for _, kept in due:
                        kept.due = now + self._interval(kept.ttl)
                    return due
                soonest = min((kept.due for kept in self.kept.values()), default=now + self.longest_wait)
                self.condition.wait(soonest - now)
            return None

    def _keeps(self, key: str, owner: str) -> bool:
        with self.condition:
            return (key, owner) in self.kept
