"""Job log: one line when a job starts and one when it ends, with its duration and outcome."""

from __future__ import annotations

import time

from dramatiq.logging import get_logger
from dramatiq.middleware import Middleware

from workers.cancellation import JobCancelled
from workers.middleware.options import option
from workers.redaction import describe_arguments


class JobLog(Middleware):
    """Log every job's start and end with its duration.

    Lines carry actor, queue, message id and attempt (1 for the first run). Arguments are
    shown as ``[redacted]`` unless the actor (or the message) opts in with ``log_arguments=True``:
    they may be customer data.

    List it below every middleware that may skip a job before it starts (UniqueJobs puts back a
    ``while_executing`` job whose twin runs), since before-hooks run top-down: a job is logged as
    started only once it really starts. List it above Retries: after-hooks run bottom-up, so the
    end line names the outcome Retries decided.

    Per-actor option:
      log_arguments(bool): Show the job's arguments, redacted (``workers.redaction``).
    """

    def __init__(self) -> None:
        self.logger = get_logger(__name__, type(self))
        self.started: dict[str, tuple[float, int]] = {}

    @property
    def actor_options(self) -> set[str]:
        return {"log_arguments"}

    def before_process_message(self, broker, message) -> None:
        """Note the start time and log the start."""
        # Retries counts the attempts already made in the message's options.
        attempt = message.options.get("retries", 0) + 1
        self.started[message.message_id] = (time.perf_counter(), attempt)
        self.logger.info(
            "job started actor=%s queue=%s message_id=%s attempt=%d args=%s",
            message.actor_name,
            message.queue_name,
            message.message_id,
            attempt,
            describe_arguments(message.args, message.kwargs, reveal=option(broker, message, "log_arguments", False)),
        )

    def after_process_message(self, broker, message, *, result=None, exception=None) -> None:
        """Log the end with the duration and outcome."""
        started, attempt = self.started.pop(message.message_id, (time.perf_counter(), 0))
        duration_ms = (time.perf_counter() - started) * 1000
        outcome = LOG_OUTCOMES[job_outcome(message, exception)]
        fields = (message.actor_name, message.queue_name, message.message_id, attempt, duration_ms)
        if exception is None:
            self.logger.info("job finished actor=%s queue=%s message_id=%s attempt=%d duration_ms=%.1f", *fields)
        else:
            self.logger.warning(
                "job failed actor=%s queue=%s message_id=%s attempt=%d duration_ms=%.1f outcome=%s error=%s: %s",
                *fields,
                outcome,
                type(exception).__name__,
                str(exception)[:200],
            )

    def after_skip_message(self, broker, message) -> None:
        """Forget the start time of a message that a middleware skipped."""
        self.started.pop(message.message_id, None)


#: How the log lines and the StatsD counters name each outcome of :func:`job_outcome`.
LOG_OUTCOMES = {"succeeded": "success", "retrying": "retry", "failed": "failure", "cancelled": "cancelled"}


def job_outcome(message, exception: BaseException | None) -> str:
    """How a processed job ended: ``succeeded``, ``retrying``, ``failed`` or ``cancelled``.

    The one rule for the job log, the StatsD metrics and the job history. Call it from an ``after_process_message``
    hook of a middleware listed above Retries: after-hooks run bottom-up, so Retries has already
    run, and a failure it did not mark as failed for good has been scheduled for another attempt.
    """
    if exception is None:
        return "succeeded"
    if isinstance(exception, JobCancelled):
        return "cancelled"
    return "failed" if message.failed else "retrying"
