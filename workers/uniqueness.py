"""Unique jobs' terms, shared by their middleware and every sender: the modes, the lock's option, the key, the errors.

The middleware (``workers.middleware.unique``) says what each mode does; a sender catches
``DuplicateJob`` without depending on it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import dramatiq
from dramatiq.middleware import MiddlewareError

UNTIL_EXECUTED = "until_executed"
UNTIL_STARTED = "until_started"
WHILE_EXECUTING = "while_executing"
MODES = (UNTIL_EXECUTED, UNTIL_STARTED, WHILE_EXECUTING)

#: The message option naming the lock a message took (or takes, for ``while_executing``).
KEY_OPTION = "unique_key"


class DuplicateJob(MiddlewareError):
    """A unique job was sent while its twin holds the lock; the send was dropped.

    A ``MiddlewareError``, so that the broker lets it out of ``before_enqueue`` to the sender.
    """


class UniqueModeError(MiddlewareError, ValueError):
    """An actor's ``unique`` option names no mode."""


def default_key(actor_name: str, args: tuple, kwargs: dict) -> str:
    """The actor's name and a digest of its arguments, the same for equal JSON arguments."""
    payload = json.dumps([list(args), kwargs], sort_keys=True, separators=(",", ":"), default=str)
    return f"{actor_name}:{hashlib.sha256(payload.encode()).hexdigest()[:32]}"


def job_key(broker: dramatiq.Broker, message: dramatiq.Message) -> str:
    """A job's key: its actor's name and the actor's ``unique_key`` of the arguments, or ``default_key``.

    The key function is the actor's alone: a function cannot travel in a message, whose
    option of that name holds the lock's key once taken.
    """
    key_function: Callable[..., str] | None = broker.get_actor(message.actor_name).options.get("unique_key")
    if key_function is not None:
        return f"{message.actor_name}:{key_function(*message.args, **message.kwargs)}"
    return default_key(message.actor_name, message.args, message.kwargs)
