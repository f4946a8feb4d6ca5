"""Message size limit: a message over the limit is refused when it is sent, naming its actor and size."""

from __future__ import annotations

from django.conf import settings
from dramatiq.logging import get_logger
from dramatiq.middleware import CurrentMessage, Middleware, MiddlewareError

from workers.dramatiq_internals.worker import in_consumer_thread
from workers.signing import body_size


class MessageTooLarge(MiddlewareError):
    """A message over the size limit was sent; nothing was enqueued.

    A ``MiddlewareError``, so that the broker lets it out of ``before_enqueue`` to the sender.
    """


class MessageSizeLimit(Middleware):
    """Refuse to send a message whose JSON body is over ``max_bytes``.

    Jobs carry ids and small JSON values; a megabyte argument is a bug, and a worker that
    receives one spends its time copying, parsing and logging it. ``actor.send``, bulk sends
    and the outbox all go through ``before_enqueue``, so all of them refuse, before any other
    middleware (a unique lock, say) has acted on the message: keep this first in the list.
    Workers refuse the same limit on receipt (``workers.signing``), so a message that reached
    the broker some other way becomes a dead letter with the reason "oversized".

    A message that a worker sends again, a retry of the job it is running or a delayed message
    coming due, has been accepted once and is never refused here: refusing it would lose it.
    If a retry grew over the limit (by its traceback), its receipt dead-letters it instead.

    Parameters:
      max_bytes(int): The largest JSON body, in bytes. Defaults to ``settings.JOB_MAX_MESSAGE_BYTES``.
    """

    def __init__(self, *, max_bytes: int | None = None) -> None:
        self.logger = get_logger(__name__, type(self))
        self.max_bytes = max_bytes if max_bytes is not None else settings.JOB_MAX_MESSAGE_BYTES

    def before_enqueue(self, broker, message, delay) -> None:
        """Raise ``MessageTooLarge`` for a new message over the limit."""
        size = body_size(message.asdict())
        if size <= self.max_bytes:
            return
        current = CurrentMessage.get_current_message()
        if in_consumer_thread() or (current is not None and current.message_id == message.message_id):
            self.logger.warning(
                "Message %s of %s is %d bytes, over the limit of %d; sent again all the same.",
                message.message_id,
                message.actor_name,
                size,
                self.max_bytes,
            )
            return
        raise MessageTooLarge(
            f"message {message.message_id} for {message.actor_name} is {size:,} bytes, over the limit of "
            f"{self.max_bytes:,} (JOB_MAX_MESSAGE_BYTES); send ids and small values, not data"
        )


def check_message_size(broker, message) -> None:
    """Raise ``MessageTooLarge`` if the broker's ``MessageSizeLimit`` would refuse ``message``.

    For a sender that stores a message before it sends it (the outbox), so that the caller
    hears of it at once, not a relay that would try to send it again and again.
    """
    for middleware in broker.middleware:
        if isinstance(middleware, MessageSizeLimit):
            middleware.before_enqueue(broker, message, None)
