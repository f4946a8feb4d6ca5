"""Result writes sent in the background: one thread per process sends all that wait in one round trip.

A task's start and its successful end are recorded this way, so that a job does not wait on
Redis for them: the thread sends them a few milliseconds later, many jobs' writes in one
pipeline, and the start and end of a task that took less than that as one write. A failure is
recorded at once instead (``RedisResults.write``). If Redis does not answer, the writes wait and
are sent again after a pause; at exit the process sends what is left. Only a process killed in
the milliseconds between a task's end and that send loses the write: its result then says
RUNNING until it expires.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

#: How long the thread lets writes gather once one is waiting, in seconds.
GATHER = 0.005
#: Results with writes kept while Redis does not answer; past this, the oldest are dropped (and logged).
MAX_WAITING = 100_000
#: Longest pause between two tries while Redis does not answer, in seconds.
MAX_PAUSE = 5.0


@dataclass
class Write:
    """What is to be written to one result: later writes merged into earlier ones."""

    fields: dict[str, str]
    keep: dict[str, str] = field(default_factory=dict)
    status: str | None = None
    phase: int | None = None

    def merge(self, later: Write) -> None:
        self.fields.update(later.fields)
        for name, value in later.keep.items():
            self.keep.setdefault(name, value)
        if later.phase is not None and (self.phase is None or later.phase >= self.phase):
            self.status, self.phase = later.status, later.phase


class BackgroundWrites:
    """Writes handed to ``send`` in batches ({key: Write}, oldest first) by a thread of this process."""

    def __init__(self, send: Callable[[dict[str, Write]], None]) -> None:
        self.send = send
        self.waiting: dict[str, Write] = {}
        self.mutex = threading.Lock()
        self.sending = threading.Lock()
        self.wakeup = threading.Event()
        self.pid: int | None = None

    def add(self, key: str, write: Write) -> None:
        if self.pid != os.getpid():
            self._start()
        with self.mutex:
            if key in self.waiting:
                self.waiting[key].merge(write)
            else:
                self.waiting[key] = write
        if not self.wakeup.is_set():
            self.wakeup.set()

    def flush(self) -> bool:
        """Send everything waiting now, in this thread; False if Redis did not take it (it waits on)."""
        with self.sending:
            with self.mutex:
                batch, self.waiting = self.waiting, {}
            if not batch:
                return True
            try:
                self.send(batch)
            except Exception as error:
                self._put_back(batch)
                logger.warning("Could not send %d task result write(s) (%s); trying again.", len(batch), error)
                return False
            return True

    def _put_back(self, batch: dict[str, Write]) -> None:
        with self.mutex:
            for key, later in self.waiting.items():
                if key in batch:
                    batch[key].merge(later)
                else:
                    batch[key] = later
            dropped = len(batch) - MAX_WAITING
            for key in list(batch)[: max(0, dropped)]:
                del batch[key]
            self.waiting = batch
        if dropped > 0:
            logger.error("Dropped the writes of %d task result(s): Redis has not answered for too long.", dropped)

    def _start(self) -> None:
        with self.sending:
            if self.pid == os.getpid():
                return
            self.waiting = {}  # a forked copy's writes are its parent's to send
            self.pid = os.getpid()
            threading.Thread(target=self._run, name="task-results", daemon=True).start()
            atexit.register(self.flush)

    def _run(self) -> None:
        pause = 0.5
        while True:
            self.wakeup.wait()
            self.wakeup.clear()
            time.sleep(GATHER)
            if self.flush():
                pause = 0.5
            else:
                time.sleep(pause)
                pause = min(MAX_PAUSE, pause * 2)
                self.wakeup.set()
