"""What a consumer lets through: a body that cannot run is refused and recorded, a paused queue gives nothing."""

from __future__ import annotations

import hashlib

from django.db import connections
from dramatiq import Message
from dramatiq.broker import MessageProxy
from dramatiq.common import q_name
from dramatiq.errors import DecodeError

from workers.signing import MalformedMessage, MessageRefused

#: Seconds a consumer of a paused queue waits before it looks again.
PAUSED_POLL = 0.5


def is_paused(broker, queue_name: str) -> bool:
    """True if ``queue_name`` is a queue (not a delay queue) that is paused; a delay queue never is."""
    from workers.pauses import paused_view  # models load after the broker is built

    return q_name(queue_name) == queue_name and queue_name in paused_view(broker)


def pauses_reread(broker) -> None:
    """Make the next ``is_paused`` read the paused queues afresh, not from the copy kept for a second."""
    from workers.pauses import paused_view  # models load after the broker is built

    paused_view(broker).stale()


def check_queue(message: Message, queue_name: str) -> None:
    """Raise ``MalformedMessage`` unless the message names the queue it was read from.

    A worker thread hands a finished message back to the consumer of the queue the message
    names; a queue this worker does not consume would end that thread.
    """
    if message.queue_name != queue_name:
        raise MalformedMessage(
            f"the message names queue {message.queue_name[:100]!r}, but was read from {queue_name!r}"
        )


def refuse(data: bytes, error: BaseException, *, queue_name: str, message_id: str | None, logger) -> None:
    """Record a body a consumer will not run as a dead letter, and say so in one line."""
    from workers import dead_letters  # models load after the broker is built

    reason, description = refusal(error)
    # The broker's id when known; else the body's hash, the same on every redelivery of it.
    message_id = message_id or hashlib.sha256(data).hexdigest()
    logger.error("Refused message %s on queue %s: %s (%s).", message_id, queue_name, reason, description)
    try:
        dead_letters.record_refused(
            data=data, reason=reason, error=description, queue_name=queue_name, message_id=message_id
        )
    except Exception:
        logger.exception("Could not record refused message %s as a dead letter.", message_id)
    finally:
        # Consumer threads are not worker threads: nothing else closes their connections.
        connections.close_all()


def refusal(error: BaseException) -> tuple[str, str]:
    """The dead-letter reason and a one-line description of why a body was refused."""
    cause = error.error if isinstance(error, DecodeError) and isinstance(error.error, BaseException) else error
    if isinstance(cause, MessageRefused):
        return cause.reason, str(cause)
    # Anything else that broke decoding (the message's constructor, a different encoder).
    return MalformedMessage.reason, f"{type(cause).__name__}: {str(cause)[:200]}"


def stuffed_exception(message) -> BaseException | None:
    """The exception the worker stuffed into a message proxy (an unknown actor, a skip), if any."""
    return getattr(message, "_exception", None) if isinstance(message, MessageProxy) else None
