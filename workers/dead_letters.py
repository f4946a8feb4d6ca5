"""Dead letters: record a job that failed for good (once per message) and replay it."""

from __future__ import annotations

import traceback as tb

import dramatiq
from django.db import transaction
from django.utils import timezone
from dramatiq import Message

from workers.models import DeadLetter
from workers.outbox import outbox_add


def record(message, exception: BaseException, reason: str) -> bool:
    """Store the message and its error; True if this call stored it, False if it already was.

    The unique message id makes this safe to call again when a message is redelivered after a
    worker died between recording and acknowledging.
    """
    error = f"{type(exception).__name__}: {exception}"[:2000]
    trace = "".join(tb.format_exception(exception, limit=30))
    _, created = DeadLetter.objects.get_or_create(
        message_id=message.message_id,
        defaults={
            "actor_name": message.actor_name,
            "queue_name": message.queue_name,
            "message": _json_safe(message.asdict()),
            "reason": reason,
            "error": error,
            "traceback": trace,
            "attempts": message.options.get("retries", 0) + 1,
        },
    )
    return created


def replay(dead_letter: DeadLetter, *, broker: dramatiq.Broker | None = None) -> str:
    """Send the message again as a new message with a fresh retry count; returns its id."""
    broker = broker or dramatiq.get_broker()
    with transaction.atomic():
        locked = DeadLetter.objects.select_for_update().get(pk=dead_letter.pk)
        if locked.replayed_at is not None:
            return locked.replayed_message_id
        data = dict(locked.message)
        message = Message(
            queue_name=data["queue_name"],
            actor_name=data["actor_name"],
            args=tuple(data["args"]),
            kwargs=data["kwargs"],
            options={},
        )
        locked.replayed_at = timezone.now()
        locked.replayed_message_id = message.message_id
        locked.save(update_fields=["replayed_at", "replayed_message_id"])
        outbox_add([message], broker=broker)
    return message.message_id


def _json_safe(data: dict) -> dict:
    options = {key: value for key, value in data.get("options", {}).items() if key != "traceback"}
    return {**data, "args": list(data.get("args", ())), "options": options}
