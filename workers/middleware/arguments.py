"""Argument check: a message whose arguments do not fit its actor is dead-lettered, not retried."""

from __future__ import annotations

import inspect

from dramatiq.logging import get_logger
from dramatiq.middleware import Middleware, SkipMessage


class ArgumentCheck(Middleware):
    """Refuse a message whose arguments cannot be bound to its actor's function.

    Such a message fails the same way on every attempt, so retrying it would only be a retry
    storm: it is logged, failed into the dead-letter queue and recorded as a ``DeadLetter``
    with the reason "malformed", and the actor never runs.
    """

    def __init__(self) -> None:
        self.logger = get_logger(__name__, type(self))
        self.signatures: dict[str, inspect.Signature] = {}

    def after_declare_actor(self, broker, actor) -> None:
        """Keep the actor's signature, read once rather than per message."""
        self.signatures[actor.actor_name] = inspect.signature(actor.fn)

    def before_process_message(self, broker, message) -> None:
        """Bind the arguments; on a mismatch, dead-letter the message and skip it."""
        signature = self.signatures.get(message.actor_name)
        if signature is None:
            return
        try:
            signature.bind(*message.args, **message.kwargs)
        except TypeError as error:
            self.logger.error(
                "Malformed arguments for %s in message %s: %s.", message.actor_name, message.message_id, error
            )
            message.fail()
            from workers import dead_letters  # models load after the broker is built

            dead_letters.record(message, error, "malformed")
            raise SkipMessage(str(error)) from error
