"""Job options: the one rule by which every platform middleware reads a per-job setting.

A setting is looked up on the message first (a send may override it, and the options a
middleware writes on a message travel with it through retries), then on the actor (its
declaration), then falls back to the middleware's default, as Dramatiq's own middleware do.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.errors import ActorNotFound


def option(broker: dramatiq.Broker, message: dramatiq.Message, name: str, default: Any = None) -> Any:
    """The message's option ``name``, else its actor's, else ``default``; ``None`` counts as not set.

    An actor this process does not know (a message for another deployment) has no options of its own.
    """
    value = message.options.get(name)
    if value is not None:
        return value
    try:
        value = broker.get_actor(message.actor_name).options.get(name)
    except ActorNotFound:
        return default
    return default if value is None else value
