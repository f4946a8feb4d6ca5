"""The worker's log line for a failed job, at the level of what follows it: a retry is a warning, not an outage."""

from __future__ import annotations

import logging

import dramatiq
from dramatiq.errors import ActorNotFound

from workers.dramatiq_internals.worker import FAILED_TEXT
from workers.middleware.retries import Retries


class RetryLogLevel(logging.Filter):
    """Log a failure that will be retried as a warning, not as an error with a traceback.

    Dramatiq's worker logs every unhandled exception at ERROR with its traceback, before any
    middleware has decided what follows, so a job that fails twice and then succeeds leaves
    two tracebacks that look like outages. Put on the ``dramatiq.worker.WorkerThread`` logger,
    this asks ``Retries.verdict`` what will follow: a retry becomes a WARNING naming the
    exception; a discarded or exhausted job keeps its ERROR and traceback. Either way the
    message is named by actor and id: Dramatiq's own rendering shows its arguments.
    """

    FAILED = FAILED_TEXT

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != self.FAILED or not record.exc_info or not record.args:
            return True
        broker = dramatiq.get_broker()
        retries = next((each for each in broker.middleware if isinstance(each, Retries)), None)
        message, exception = record.args[0], record.exc_info[1]
        named = f"{message.actor_name} message_id={message.message_id}"
        try:
            verdict = retries.verdict(broker, message, exception) if retries is not None else None
        except ActorNotFound:
            verdict = None
        if verdict == "cancelled":
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg = "Message %s stopped when asked to: cancelled."
            record.args = (named,)
            record.exc_info = record.exc_text = None
        elif verdict == "retry":
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = "Failed to process message %s with %s: %s; it will be retried."
            record.args = (named, type(exception).__name__, str(exception)[:200])
            record.exc_info = record.exc_text = None
        else:
            record.args = (named,)
        return True
