"""StatsD metrics: each job's duration and outcome, sent as a timing and a counter per actor."""

from __future__ import annotations

import time

from django.conf import settings
from dramatiq.middleware import Middleware

from workers.middleware.job_log import LOG_OUTCOMES, job_outcome


class StatsdMetrics(Middleware):
    """Send each processed job's ``jobs.<actor>.duration`` timing (in milliseconds) and one of the
    counters ``jobs.<actor>.success``, ``.retry``, ``.failure`` or ``.cancelled`` to StatsD.

    List it above Retries: after-hooks run bottom-up, so the outcome is the one Retries decided.
    Without a client (``settings.STATSD_HOST`` unset) it does nothing.

    Parameters:
      statsd(statsd.StatsClient): A client to send metrics to. Defaults to one built from
        settings, or none when ``STATSD_HOST`` is unset.
    """

    def __init__(self, *, statsd=None) -> None:
        self.statsd = statsd if statsd is not None else _statsd_from_settings()
        self.started: dict[str, float] = {}

    def before_process_message(self, broker, message) -> None:
        """Note the start time."""
        if self.statsd is not None:
            self.started[message.message_id] = time.perf_counter()

    def after_process_message(self, broker, message, *, result=None, exception=None) -> None:
        """Send the duration and the outcome."""
        started = self.started.pop(message.message_id, None)
        if self.statsd is None or started is None:
            return
        self.statsd.timing(f"jobs.{message.actor_name}.duration", (time.perf_counter() - started) * 1000)
        self.statsd.incr(f"jobs.{message.actor_name}.{LOG_OUTCOMES[job_outcome(message, exception)]}")

    def after_skip_message(self, broker, message) -> None:
        """Forget the start time of a message that a later middleware skipped."""
        self.started.pop(message.message_id, None)


def _statsd_from_settings():
    if not settings.STATSD_HOST:
        return None
    import statsd

    return statsd.StatsClient(settings.STATSD_HOST, settings.STATSD_PORT, prefix=settings.STATSD_PREFIX)
