"""Paused recurring jobs as the scheduler sees them: the ``Pause`` rows, read at most every few seconds.

The rows are the truth (the console writes them); the scheduler asks every tick, so the answer
is kept for ``interval`` seconds. When the database cannot be read, the last answer stands and
one warning says so: a database away must not stop the schedule, nor unpause a job.
"""

from __future__ import annotations

import logging
import time

from django.db import DatabaseError, close_old_connections, connection

from workers.models import Pause

logger = logging.getLogger(__name__)


def paused_schedules() -> frozenset[str]:
    """The names of the recurring jobs paused now."""
    return frozenset(Pause.objects.filter(kind=Pause.Kind.SCHEDULE).values_list("name", flat=True))


class SchedulePauses:
    """The paused jobs' names, read from the database at most once per ``interval``.

    Parameters:
      interval(float): How long an answer is kept, in seconds.
    """

    def __init__(self, *, interval: float = 5.0) -> None:
        self.interval = interval
        self.names: frozenset[str] = frozenset()
        self.read_at: float | None = None
        self.failing = False

    def __call__(self) -> frozenset[str]:
        now = time.monotonic()
        if self.read_at is not None and now - self.read_at < self.interval:
            return self.names
        self.read_at = now
        try:
            if not connection.in_atomic_block:
                # The scheduler's long-lived loop: a connection the database dropped is replaced, not reused.
                close_old_connections()
            self.names = paused_schedules()
        except DatabaseError as error:
            if not self.failing:
                logger.warning("Cannot read the paused recurring jobs (%s); keeping %s", error, sorted(self.names))
            self.failing = True
        else:
            if self.failing:
                logger.info("The paused recurring jobs are read again")
            self.failing = False
        return self.names
