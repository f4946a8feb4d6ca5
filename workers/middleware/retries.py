"""Retries: per-actor schedules, never-retry exceptions, and a callback when retries run out."""

from __future__ import annotations

import time
import traceback

import dramatiq
from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from dramatiq.common import compute_backoff
from dramatiq.errors import ActorNotFound, Retry
from dramatiq.logging import get_logger
from dramatiq.middleware import Middleware

from workers.cancellation import JobCancelled
from workers.errors import PermanentError
from workers.exhausted_callbacks import callback_check, callback_message
from workers.middleware.options import option
from workers.resend import resend

#: Exceptions no actor retries: a permanent domain failure, or a row that is not there.
ALWAYS_DISCARD: tuple[type[BaseException], ...] = (PermanentError, ObjectDoesNotExist)


def exponential_backoff(retries: int, *, min_backoff: int = 15_000, max_backoff: int = 86_400_000) -> float:
    """The default schedule: exponential from ``min_backoff`` with jitter, in seconds."""
    _, delay_ms = compute_backoff(retries, factor=min_backoff, jitter=True, max_backoff=max_backoff)
    return delay_ms / 1000


def log_exhausted(message, exception: BaseException) -> None:
    """The default callback when retries run out: one error line."""
    get_logger(__name__, "Retries").error(
        "retries exhausted actor=%s queue=%s message_id=%s attempts=%d error=%s",
        message.actor_name,
        message.queue_name,
        message.message_id,
        message.options.get("retries", 0) + 1,
        type(exception).__name__,
    )


class Retries(Middleware):
    """Retry failed jobs on each actor's schedule, and dead-letter what cannot be retried.

    An exception that is an instance of ``PermanentError``, of ``ObjectDoesNotExist``, or of a
    class in the actor's ``discard`` (or Dramatiq's ``throws``) option is never retried. Other
    exceptions are retried after ``retry_backoff(retries)`` seconds, where ``retries`` counts
    the retries already made (0 before the first), until ``max_retries`` retries have been made.
    Discarded and exhausted jobs are failed, so they land in the broker's dead-letter queue,
    and are recorded as ``DeadLetter`` rows to be looked at and replayed. A job that stopped
    because it was asked to (``JobCancelled``) is none of these: it ended, and is acknowledged.

    An exhausted job's ``on_retries_exhausted`` callback is an actor (or an actor's name): it
    is sent, as a job of its own, the failed job's arguments by name (those its signature
    takes), plus ``error`` ("ExceptionName: text") and ``message_id`` if it asks for them. The
    callback message goes through the outbox in the transaction that writes the dead letter,
    so it is sent exactly once per message, even if the message is delivered again, and then
    retried on the callback's own schedule until it succeeds. If that transaction fails (the
    database is away), the message is not failed yet: it is tried again after its last delay,
    so neither the dead letter nor the callback is lost. Without a callback, one error line.

    Per-actor options, each overriding the middleware default (and overridden by the message's own;
    ``workers.middleware.options``):
      max_retries(int): Retries after the first attempt.
      retry_backoff(Callable[[int], float]): Delay before the next attempt, in seconds, from the
        number of retries made so far. The default is exponential with jitter from
        ``min_backoff`` to ``max_backoff`` (Dramatiq's options, in milliseconds).
      discard(tuple[type[Exception], ...]): Exceptions never retried.
      on_retries_exhausted(dramatiq.Actor | str): Sent the failed job's arguments and error.

    Parameters:
      max_retries(int): Default retries. Defaults to 20.
      min_backoff(int): Default first delay, in milliseconds. Defaults to 15 seconds.
      max_backoff(int): Longest delay, in milliseconds. Defaults to 1 day.
    """

    def __init__(self, *, max_retries: int = 20, min_backoff: int = 15_000, max_backoff: int = 86_400_000) -> None:
        self.logger = get_logger(__name__, type(self))
        self.max_retries = max_retries
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff

    def before_declare_actor(self, broker, actor) -> None:
        """Refuse at import a callback that could not be sent, rather than find out when retries run out."""
        callback_check(actor, actor.options.get("on_retries_exhausted"))

    @property
    def actor_options(self) -> set[str]:
        return {
            "max_retries",
            "min_backoff",
            "max_backoff",
            "retry_backoff",
            "discard",
            "throws",
            "on_retries_exhausted",
        }

    def verdict(self, broker, message, exception: BaseException) -> str:
        """What follows this failure of this message: ``"cancelled"``, ``"discard"``, ``"exhaust"`` or ``"retry"``."""
        if isinstance(exception, JobCancelled):
            return "cancelled"
        discard = (
            ALWAYS_DISCARD
            + tuple(option(broker, message, "discard") or ())
            + _as_tuple(option(broker, message, "throws"))
        )
        if isinstance(exception, discard):
            return "discard"
        if message.options.get("retries", 0) >= option(broker, message, "max_retries", self.max_retries):
            return "exhaust"
        return "retry"

    def after_process_message(self, broker, message, *, result=None, exception=None) -> None:
        """Discard, exhaust, or retry after a delay, as ``verdict`` says."""
        if exception is None:
            return
        retries = message.options.get("retries", 0)
        verdict = self.verdict(broker, message, exception)
        if verdict == "cancelled":
            return
        if verdict == "discard":
            self.logger.warning(
                "Discarding message %s of %s after %s: not retryable.",
                message.message_id,
                message.actor_name,
                type(exception).__name__,
            )
            self._dead_letter(broker, message, exception, reason="discarded")
            return

        if verdict == "exhaust":
            self._dead_letter(broker, message, exception, reason="exhausted")
            return

        delay_ms = self._delay(broker, message, retries, exception)
        message.options["retries"] = retries + 1
        message.options["traceback"] = traceback.format_exc(limit=30)
        message.options["requeue_timestamp"] = int(time.time() * 1000)
        self.logger.info("Retrying message %s of %s in %d ms.", message.message_id, message.actor_name, delay_ms)
        resend(broker, message, delay=delay_ms)

    def _dead_letter(self, broker, message, exception: BaseException, *, reason: str) -> None:
        """Write the dead letter (and an exhausted job's callback) in one transaction, then fail the message."""
        from workers import dead_letters  # models load after the broker is built
        from workers.outbox import outbox_add

        callback = None
        if reason == "exhausted":
            target = option(broker, message, "on_retries_exhausted")
            callback = self._callback_message(broker, message, exception, target)
        try:
            with transaction.atomic():
                recorded = dead_letters.record(message, exception, reason)
                if recorded and callback is not None:
                    outbox_add([callback], broker=broker)
        except Exception:
            # Failing the message now would lose the dead letter and the callback: try the last
            # attempt again later instead, when the database may be back.
            delay_ms = self._delay(broker, message, message.options.get("retries", 0), exception)
            self.logger.error(
                "Could not record message %s of %s as %s; trying it again in %d ms.",
                message.message_id,
                message.actor_name,
                reason,
                delay_ms,
                exc_info=True,
            )
            resend(broker, message, delay=delay_ms)
            return
        message.fail()
        if recorded and reason == "exhausted" and callback is None:
            log_exhausted(message, exception)

    def _callback_message(self, broker, message, exception: BaseException, target) -> dramatiq.Message | None:
        """The callback job of an exhausted message, or None when it has none (or it cannot be built)."""
        if target is None:
            return None
        try:
            return callback_message(broker, message, exception, target)
        except (ActorNotFound, TypeError) as error:
            self.logger.error(
                "The retries-exhausted callback %r of message %s of %s cannot be sent: %s.",
                target,
                message.message_id,
                message.actor_name,
                error,
            )
            return None

    def _delay(self, broker, message, retries: int, exception: BaseException) -> int:
        """Milliseconds before the next attempt, after ``retries`` retries."""
        if isinstance(exception, Retry) and exception.delay is not None:
            return exception.delay
        retry_backoff = option(broker, message, "retry_backoff")
        if retry_backoff is not None:
            return int(retry_backoff(retries) * 1000)
        return int(
            exponential_backoff(
                retries,
                min_backoff=option(broker, message, "min_backoff", self.min_backoff),
                max_backoff=min(option(broker, message, "max_backoff", self.max_backoff), self.max_backoff),
            )
            * 1000
        )


def _as_tuple(value) -> tuple:
    if value is None:
        return ()
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)
