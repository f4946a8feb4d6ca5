"""Cancellation: a job asked to stop before it started is skipped, and one that stopped itself ends as cancelled."""

from __future__ import annotations

import threading
import time

import dramatiq
import redis
from dramatiq.logging import get_logger
from dramatiq.middleware import Middleware, SkipMessage

from workers.cancellation import (
    LOG_CAP,
    JobCancelled,
    MemoryRequests,
    RedisRequests,
    release_unique_lock,
    requests,
)
from workers.resend import resend


class Cancellation(Middleware):
    """Skip the jobs asked to stop (``workers.cancellation.request_cancel``), and end cleanly those that stopped.

    A cancelled message is skipped in ``before_process_message``: acknowledged, not retried, not
    dead-lettered, with a "job cancelled" line. The check reads a set of cancelled message ids
    held in the worker process, not Redis: the set follows the requests' log, fetching only
    the requests newer than the last it saw, at most once every ``refresh_interval`` seconds and
    only when a job is about to start (an idle worker asks nothing). Cancels are rare and the
    log is capped, so the set stays small; and since it is loaded whole when a process starts,
    a job delayed for days and cancelled long ago is still found, without a per-job key lookup.
    The price is a window: a job started within ``refresh_interval`` of its cancel may still
    run; a long job then sees the request at its next ``cancel_requested()``, which reads the
    key itself.

    A job that stopped itself ends with ``JobCancelled``: Retries neither retries nor
    dead-letters it. Either way a cancelled job gives back its unique lock (so that it can be
    resumed at once, not when the lock expires) and counts as cancelled in its batch. If that
    count cannot be written (the database is away), the message is sent again after
    ``recount_delay``, to be skipped, and counted, then: nothing else would ever count it, and
    its batch would wait for it for good.

    Runs on every broker: the requests live in the platform Redis (``REDIS_URL`` on RabbitMQ),
    and in process memory on the StubBroker.

    Parameters:
      refresh_interval(float): The longest a worker trusts its set before reading what is new,
        in seconds. Defaults to one second.
      recount_delay(int): How long before a cancelled batch job whose end could not be counted
        comes up again, in milliseconds. Defaults to 10 seconds.
    """

    def __init__(self, *, refresh_interval: float = 1.0, recount_delay: int = 10_000) -> None:
        self.logger = get_logger(__name__, type(self))
        self.refresh_interval = refresh_interval
        self.recount_delay = recount_delay
        self.cancelled: dict[str, int] = {}
        self.seen = 0
        self.refreshed_at = float("-inf")
        self.mutex = threading.Lock()

    def before_process_message(self, broker: dramatiq.Broker, message) -> None:
        """Skip the message if it was cancelled."""
        store = requests(broker)
        if isinstance(store, MemoryRequests):  # the StubBroker's: asking costs nothing
            cancelled = store.contains(message.message_id)
        else:
            self._refresh(store)
            cancelled = message.message_id in self.cancelled
        if not cancelled:
            return
        self.logger.info(
            "job cancelled actor=%s queue=%s message_id=%s: asked before it started",
            message.actor_name,
            message.queue_name,
            message.message_id,
        )
        self._ended(broker, message)
        raise SkipMessage("cancelled")

    def after_process_message(self, broker: dramatiq.Broker, message, *, result=None, exception=None) -> None:
        """A job that stopped itself when asked: give back its lock, count it in its batch."""
        if isinstance(exception, JobCancelled):
            self.logger.info(
                "job cancelled actor=%s queue=%s message_id=%s: stopped when asked, its progress committed",
                message.actor_name,
                message.queue_name,
                message.message_id,
            )
            self._ended(broker, message)

    def _refresh(self, store: RedisRequests) -> None:
        if time.monotonic() - self.refreshed_at < self.refresh_interval:
            return
        # The threads due for a refresh wait for the one reading (a round trip), so none starts a
        # job on a set older than the interval, nor, in a process just started, on no set at all.
        with self.mutex:
            if time.monotonic() - self.refreshed_at < self.refresh_interval:
                return
            try:
                new, latest = store.since(self.seen)
            except redis.RedisError as error:
                self.logger.warning("Cancel requests could not be read; jobs start unchecked: %s", error)
                self.refreshed_at = time.monotonic()
                return
            if latest < self.seen:
                self.cancelled = {}
            self.cancelled.update(new)
            self.seen = latest
            if len(self.cancelled) > 2 * LOG_CAP:  # what the log has dropped, the set drops too
                floor = latest - LOG_CAP
                self.cancelled = {key: number for key, number in self.cancelled.items() if number > floor}
            self.refreshed_at = time.monotonic()

    def _ended(self, broker: dramatiq.Broker, message) -> None:
        batch_id = message.options.get("batch_id")
        if batch_id is not None:
            from workers.batches import batch_record  # models load after the broker is built

            try:
                batch_record(batch_id=batch_id, message_id=message.message_id, succeeded=False, cancelled=True)
            except Exception:
                self.logger.error(
                    "Could not count cancelled %s in batch %s; it comes up again in %d ms.",
                    message.message_id,
                    batch_id,
                    self.recount_delay,
                    exc_info=True,
                )
                resend(broker, message, delay=self.recount_delay)
        # Given back last: a copy sent again to be counted took its own lock again, and gives it up here too.
        try:
            release_unique_lock(broker, message)
        except redis.RedisError:
            self.logger.warning("The unique lock of cancelled %s expires by itself.", message.message_id)
