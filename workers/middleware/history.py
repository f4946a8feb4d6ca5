"""Job history: every finished run and per-minute metrics, kept in memory and written in bulk once a second."""

from __future__ import annotations

import os
import socket
import threading
import time

from dramatiq.logging import get_logger
from dramatiq.middleware import Middleware

from workers.history import HistoryBuffer
from workers.middleware.cancellation import Cancellation
from workers.middleware.job_log import job_outcome
from workers.middleware.limits import FlowControl


class JobHistory(Middleware):
    """Record each finished run (``JobRun``) and per-minute counts and durations (``JobMinute``).

    A job only appends a tuple to an in-memory buffer: a thread of each worker process writes
    the buffer in one transaction every ``flush_interval`` seconds (a bulk insert of the runs and
    an upsert of the process's own minute rows with its running totals), so bookkeeping never
    costs a job a database write. While the database is away the buffer keeps growing up to
    ``capacity`` runs, then drops the oldest with a counted warning; what is left is written on
    shutdown. Nothing is recorded outside a worker (the web app, in-process test drains).

    Parameters:
      flush_interval(float): Seconds between two writes of the buffer.
      capacity(int): The most runs the buffer holds while the database is away.
    """

    def __init__(self, *, flush_interval: float = 1.0, capacity: int = 50_000) -> None:
        self.logger = get_logger(__name__, type(self))
        self.flush_interval = flush_interval
        self.capacity = capacity
        self.buffer: HistoryBuffer | None = None
        self.started: dict[str, tuple[float, int]] = {}
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    def after_worker_boot(self, broker, worker) -> None:
        """Start this process's buffer and the thread that writes it."""
        self.buffer = HistoryBuffer(worker=f"{socket.gethostname()}:{os.getpid()}", capacity=self.capacity)
        self.stopped.clear()
        self.thread = threading.Thread(target=self._flushing, name="job-history", daemon=True)
        self.thread.start()

    def after_worker_shutdown(self, broker, worker) -> None:
        """Write what is left once every job has ended, then close the thread's connection."""
        self.stopped.set()
        if self.thread is not None:
            self.thread.join(timeout=30)

    def before_process_message(self, broker, message) -> None:
        if self.buffer is not None:
            # Retries counts the attempts made so far; it adds this one before the after-hooks run.
            self.started[message.message_id] = (time.time(), message.options.get("retries", 0) + 1)

    def after_process_message(self, broker, message, *, result=None, exception=None) -> None:
        if self.buffer is None:
            return
        finished = time.time()
        started, attempt = self.started.pop(message.message_id, (finished, message.options.get("retries", 0) + 1))
        error = f"{type(exception).__name__}: {exception}" if exception is not None else ""
        self.buffer.add(message, job_outcome(message, exception), attempt, started, finished, error)

    def after_skip_message(self, broker, message) -> None:
        if self.buffer is None:
            return
        finished = time.time()
        started, attempt = self.started.pop(message.message_id, (finished, message.options.get("retries", 0) + 1))
        if any(isinstance(m, FlowControl) and m.is_deferring(message) for m in broker.middleware):
            return  # deferred by a flow limit: it runs later, as the same job
        self.buffer.add(message, skip_outcome(broker, message), attempt, started, finished, "")

    def _flushing(self) -> None:
        from django.db import connections

        try:
            while not self.stopped.wait(self.flush_interval):
                self._flush()
            self._flush()
        finally:
            connections.close_all()  # this thread's own connections only

    def _flush(self) -> None:
        try:
            self.buffer.flush()
        except Exception:  # noqa: BLE001 - the buffer kept its rows; the next round tries again
            self.logger.warning("job history not written; kept for the next try", exc_info=True)


def skip_outcome(broker, message) -> str:
    """How a skipped job ended: ``cancelled`` or ``skipped``; the one rule for the job history and the job's trace.

    ``cancelled`` when the Cancellation middleware skipped it: it was cancelled while it waited.
    """
    cancelled = any(
        message.message_id in getattr(m, "cancelled", ()) for m in broker.middleware if isinstance(m, Cancellation)
    )
    return "cancelled" if cancelled else "skipped"
