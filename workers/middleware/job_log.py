"""Job log: one line when a job starts and one when it ends, with its duration, plus StatsD metrics."""

from __future__ import annotations

import time

from django.conf import settings
from dramatiq.logging import get_logger
from dramatiq.middleware import Middleware

from workers.cancellation import JobCancelled
from workers.redaction import describe_arguments


class JobLog(Middleware):
    """Log every job's start and end with its duration, and send timings and counters to StatsD.

    Lines carry actor, queue, message id and attempt (1 for the first run). Arguments are
    shown as ``[redacted]`` unless the actor opts in with ``log_arguments=True``: they may be
    customer data. With ``settings.STATSD_HOST`` set, each job sends the timing
    ``jobs.<actor>.duration`` (in milliseconds) and one of the counters ``jobs.<actor>.success``,
    ``jobs.<actor>.retry`` or ``jobs.<actor>.failure``.

    Parameters:
      statsd(statsd.StatsClient): A client to send metrics to. Defaults to one built from
        settings, or none when ``STATSD_HOST`` is unset.
    """

    def __init__(self, *, statsd=None) -> None:
        self.logger = get_logger(__name__, type(self))
        self.statsd = statsd if statsd is not None else _statsd_from_settings()
        self.started: dict[str, tuple[float, int]] = {}

    @property
    def actor_options(self) -> set[str]:
        return {"log_arguments"}

    def before_process_message(self, broker, message) -> None:
        """Note the start time and log the start."""
        # Retries counts the attempts already made in the message's options.
        attempt = message.options.get("retries", 0) + 1
        self.started[message.message_id] = (time.perf_counter(), attempt)
        actor = broker.get_actor(message.actor_name)
        self.logger.info(
            "job started actor=%s queue=%s message_id=%s attempt=%d args=%s",
            message.actor_name,
            message.queue_name,
            message.message_id,
            attempt,
            describe_arguments(message.args, message.kwargs, reveal=actor.options.get("log_arguments", False)),
        )

    def after_process_message(self, broker, message, *, result=None, exception=None) -> None:
        """Log the end with the duration and outcome; send the metrics."""
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
        if self.statsd is not None:
            self.statsd.timing(f"jobs.{message.actor_name}.duration", duration_ms)
            self.statsd.incr(f"jobs.{message.actor_name}.{outcome}")

    def after_skip_message(self, broker, message) -> None:
        """Forget the start time of a message that a middleware skipped."""
        self.started.pop(message.message_id, None)


#: How the log lines and StatsD counters name each outcome of :func:`job_outcome`.
LOG_OUTCOMES = {"succeeded": "success", "retrying": "retry", "failed": "failure", "cancelled": "cancelled"}


def job_outcome(message, exception: BaseException | None) -> str:
    """How a processed job ended: ``succeeded``, ``retrying``, ``failed`` or ``cancelled``.

    The one rule for the job log and the job history. Call it from an ``after_process_message``
    hook of a middleware listed above Retries: after-hooks run bottom-up, so Retries has already
    run, and a failure it did not mark as failed for good has been scheduled for another attempt.
    """
    if exception is None:
        return "succeeded"
    if isinstance(exception, JobCancelled):
        return "cancelled"
    return "failed" if message.failed else "retrying"


def _statsd_from_settings():
    if not settings.STATSD_HOST:
        return None
    import statsd

    return statsd.StatsClient(settings.STATSD_HOST, settings.STATSD_PORT, prefix=settings.STATSD_PREFIX)
