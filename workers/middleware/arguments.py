"""Argument check: a message whose arguments do not fit its actor is dead-lettered, not retried."""

from __future__ import annotations

import inspect
import types
import typing

from dramatiq.logging import get_logger
from dramatiq.middleware import Middleware, SkipMessage

#: The JSON types an actor's annotations are checked against; other annotations are trusted.
CHECKED_TYPES = (bool, int, float, str, list, dict, type(None))


class ArgumentCheck(Middleware):
    """Refuse a message whose arguments cannot be bound to its actor's function.

    The arguments must bind to the signature, and where a parameter is annotated with a JSON
    type (``int``, ``str``, ``float``, ``bool``, ``list``, ``dict``, or a union of them with
    ``None``), the value must be of that type: ``"abc"`` for an ``order_id: int`` is refused.
    Such a message fails the same way on every attempt, so retrying it would only be a retry
    storm: it is logged, failed into the dead-letter queue and recorded as a ``DeadLetter``
    with the reason "malformed", and the actor never runs.
    """

    def __init__(self) -> None:
        self.logger = get_logger(__name__, type(self))
        self.signatures: dict[str, tuple[inspect.Signature, dict[str, tuple[type, ...]]]] = {}

    def after_declare_actor(self, broker, actor) -> None:
        """Read the actor's signature and checkable annotations once, not per message."""
        try:
            hints = typing.get_type_hints(actor.fn)
        except Exception:  # an annotation that cannot be resolved is simply not checked
            hints = {}
        checked = {name: types_ for name, hint in hints.items() if name != "return" and (types_ := _json_types(hint))}
        self.signatures[actor.actor_name] = (inspect.signature(actor.fn), checked)

    def before_process_message(self, broker, message) -> None:
        """Bind and type-check the arguments; on a mismatch, dead-letter the message and skip it."""
        if message.actor_name not in self.signatures:
            return
        signature, checked = self.signatures[message.actor_name]
        try:
            bound = signature.bind(*message.args, **message.kwargs)
            for name, value in bound.arguments.items():
                allowed = checked.get(name)
                if allowed and not _is_instance(value, allowed):
                    raise TypeError(f"{name} must be {' or '.join(t.__name__ for t in allowed)}, got {value!r}")
        except TypeError as error:
            self.logger.error(
                "Malformed arguments for %s in message %s: %s.", message.actor_name, message.message_id, error
            )
            message.fail()
            from workers import dead_letters  # models load after the broker is built

            dead_letters.record(message, error, "malformed")
            raise SkipMessage(str(error)) from error


def _json_types(hint) -> tuple[type, ...]:
    options = (
        typing.get_args(hint)
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
        else (hint,)
    )
    options = tuple(typing.get_origin(option) or option for option in options)
    return options if all(option in CHECKED_TYPES for option in options) else ()


def _is_instance(value, allowed: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in allowed
    if isinstance(value, int) and float in allowed:
        return True
    return isinstance(value, allowed)
