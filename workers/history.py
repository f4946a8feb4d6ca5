"""The job history's buffer: finished runs and per-minute totals of one worker process, written in bulk.

Jobs append to it from their own threads (a lock held for a few microseconds); one thread of
the process writes it every second (``JobHistory``). The minute rows belong to their process
(``worker`` is host:pid), so each write overwrites them with running totals, and no two
processes ever write the same row.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from workers.durations import DURATION_BUCKETS_MS, duration_bucket
from workers.history_rows import minutes_upsert, runs_insert

logger = logging.getLogger(__name__)

#: Minute totals older than this many seconds are forgotten once written: no run lands in them any more.
MINUTE_KEPT_S = 180
#: A minute older than this is not written any more (its totals are dropped, with a warning): housekeeping
#: merges closed minutes across processes (``workers.metrics_compaction``), and a process rewriting its own
#: row of a merged minute would count its runs twice. Only a database away for this long loses any.
MINUTE_WRITE_HORIZON = timedelta(minutes=50)
COUNTED = {"succeeded": 0, "failed": 1, "retrying": 2, "cancelled": 3}


class HistoryBuffer:
    """Runs waiting to be written, and the minute totals of this process, capped at ``capacity`` runs."""

    def __init__(self, *, worker: str, capacity: int = 50_000) -> None:
        self.worker = worker
        self.capacity = capacity
        self.lock = threading.Lock()
        self.runs: deque[tuple] = deque()
        # (minute epoch, actor, queue) -> [succeeded, failed, retried, cancelled, histogram]
        self.minutes: dict[tuple[int, str, str], list] = {}
        self.dirty: set[tuple[int, str, str]] = set()
        self.dropped = 0
        self.dropped_reported = 0

    def add(self, message, outcome: str, attempt: int, started: float, finished: float, error: str) -> None:
        """Note one finished run (times in seconds since the epoch); cheap enough for every job."""
        duration_ms = (finished - started) * 1000
        run = (
            message.message_id,
            message.actor_name,
            message.queue_name,
            outcome,
            attempt,
            duration_ms,
            error,
            message.args,
            message.kwargs,
            started,
            finished,
        )
        key = (int(finished // 60) * 60, message.actor_name, message.queue_name)
        with self.lock:
            if len(self.runs) >= self.capacity:
                self.runs.popleft()
                self.dropped += 1
            self.runs.append(run)
            if outcome in COUNTED:
                totals = self.minutes.get(key)
                if totals is None:
                    totals = self.minutes[key] = [0, 0, 0, 0, [0] * (len(DURATION_BUCKETS_MS) + 1)]
                totals[COUNTED[outcome]] += 1
                totals[4][duration_bucket(duration_ms)] += 1
                self.dirty.add(key)

    def flush(self) -> int:
        """Write the waiting runs and the changed minutes in one transaction; returns how many runs.

        If the write fails, the runs go back to the front of the buffer (within the cap) and the
        minutes stay marked, and the error is raised for the caller to log.
        """
        with self.lock:
            runs, self.runs = self.runs, deque()
            dirty, self.dirty = self.dirty, set()
            minutes = {key: [*self.minutes[key][:4], list(self.minutes[key][4])] for key in dirty}
            dropped, self.dropped_reported = self.dropped - self.dropped_reported, self.dropped
        closed = timezone.now().timestamp() - MINUTE_WRITE_HORIZON.total_seconds()
        late = [key for key in minutes if key[0] < closed]
        if late:
            logger.warning("job history: %d minute total(s) too old to write (metrics merged them already)", len(late))
            for key in late:
                del minutes[key]
        if dropped:
            logger.warning("job history buffer full: dropped the %d oldest run(s), %d in all", dropped, self.dropped)
        if not runs and not minutes:
            return 0
        try:
            with transaction.atomic():
                runs_insert(runs, worker=self.worker)
                minutes_upsert(minutes, worker=self.worker)
        except Exception:
            self._put_back(runs, dirty)
            connection.close()  # a broken connection is opened afresh on the next try
            raise
        self._forget_old_minutes(max(key[0] for key in self.minutes) if self.minutes else 0)
        return len(runs)

    def _put_back(self, runs: deque, dirty: set) -> None:
        with self.lock:
            room = self.capacity - len(self.runs)
            if len(runs) > room:
                lost = len(runs) - max(room, 0)
                for _ in range(lost):
                    runs.popleft()
                self.dropped += lost
            self.runs.extendleft(reversed(runs))
            self.dirty |= dirty

    def _forget_old_minutes(self, newest: int) -> None:
        with self.lock:
            for key in [key for key in self.minutes if key[0] < newest - MINUTE_KEPT_S and key not in self.dirty]:
                del self.minutes[key]
