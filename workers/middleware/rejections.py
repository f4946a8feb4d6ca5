"""Rejections: every message the worker rejects into the broker's dead-letter queue has a DeadLetter row."""

from __future__ import annotations

from django.db import connections
from dramatiq.errors import ActorNotFound
from dramatiq.logging import get_logger
from dramatiq.middleware import Middleware

from workers.dramatiq_internals.consumers import stuffed_exception
from workers.dramatiq_internals.worker import in_consumer_thread


class Rejected(Exception):
    """A middleware failed the message without an exception of its own."""


class RejectionRecord(Middleware):
    """Record each rejected (nacked) message that no other middleware has recorded yet.

    Retries, ArgumentCheck and the others record the messages they fail with their own reason
    before the worker rejects them; this catches the rest, so that the admin's dead letters
    show everything the broker's dead-letter queue holds: a message for an actor this worker
    does not have (reason "unknown actor", rejected by the consumer thread before any middleware
    ran) and one failed by a middleware that records nothing, such as an expired ``max_age``
    (reason "rejected"). A message already recorded costs one query here.
    """

    def __init__(self) -> None:
        self.logger = get_logger(__name__, type(self))

    def after_nack(self, broker, message) -> None:
        """Record the message as a dead letter unless it already is one."""
        from workers import dead_letters  # models load after the broker is built

        exception = stuffed_exception(message)
        if message.actor_name in broker.actors:
            reason, exception = "rejected", exception or Rejected("failed by a middleware without an exception")
        else:
            reason, exception = "unknown_actor", exception or ActorNotFound(message.actor_name)
        try:
            if dead_letters.record(message, exception, reason):
                self.logger.warning(
                    "Rejected message %s of %s recorded as a dead letter (%s).",
                    message.message_id,
                    message.actor_name,
                    reason,
                )
        finally:
            if in_consumer_thread():
                # Nothing else closes a consumer thread's database connection.
                connections.close_all()
