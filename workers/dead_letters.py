"""Dead letters: record a job that failed for good, or a message refused unrun (once per message), and replay it."""

from __future__ import annotations

import traceback as tb

import dramatiq
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from dramatiq import Message

from workers.models import DeadLetter
from workers.outbox import outbox_add
from workers.signing import unwrap

#: How much of a refused message's raw body is kept for staff to look at, in bytes.
RAW_BYTES = 2000


class NotReplayable(ValueError):
    """The dead letter holds no runnable message (the broker refused it unread), so it cannot be sent again."""


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


def record_refused(*, data: bytes, reason: str, error: str, queue_name: str, message_id: str) -> bool:
    """Store a message a consumer refused before any actor saw it; True if this call stored it.

    Only the start of the raw body is kept (it may be megabytes, or not text); the actor name
    is the one the body claims, when it is readable, and is not to be trusted.
    """
    claimed = unwrap(data) if reason != DeadLetter.Reason.OVERSIZED else None
    actor_name = claimed.get("actor_name") if isinstance(claimed, dict) else None
    _, created = DeadLetter.objects.get_or_create(
        message_id=message_id,
        defaults={
            "actor_name": actor_name[:200] if isinstance(actor_name, str) else "",
            "queue_name": queue_name,
            "message": {"raw": _text(data[:RAW_BYTES]), "bytes": len(data)},
            "reason": reason,
            "error": _text(error.encode()[:2000]),
            "attempts": 0,
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
        if locked.resolved_at is not None:
            raise NotReplayable(f"dead letter {locked.message_id} was marked resolved, not to be replayed")
        message = _fresh_message(locked)
        if message is None:
            raise NotReplayable(f"dead letter {locked.message_id} ({locked.reason}) holds no message to send again")
        locked.replayed_at = timezone.now()
        locked.replayed_message_id = message.message_id
        locked.save(update_fields=["replayed_at", "replayed_message_id"])
        outbox_add([message], broker=broker)
    return message.message_id


def replay_many(queryset: QuerySet[DeadLetter], *, broker: dramatiq.Broker | None = None) -> tuple[int, int]:
    """Replay, in one transaction, each dead letter of ``queryset`` neither replayed nor resolved yet.

    Returns how many were sent again and how many hold no message to send. The rows are locked
    first, so a concurrent replay of the same dead letter (a redelivered chunk) finds it replayed.
    """
    broker = broker or dramatiq.get_broker()
    with transaction.atomic():
        rows = list(
            queryset.select_for_update().filter(replayed_at__isnull=True, resolved_at__isnull=True).order_by("pk")
        )
        now, replayed, messages = timezone.now(), [], []
        for row in rows:
            if (message := _fresh_message(row)) is None:
                continue
            row.replayed_at, row.replayed_message_id = now, message.message_id
            replayed.append(row)
            messages.append(message)
        if replayed:
            DeadLetter.objects.bulk_update(replayed, ["replayed_at", "replayed_message_id"])
            outbox_add(messages, broker=broker)
    return len(replayed), len(rows) - len(replayed)


def _fresh_message(dead_letter: DeadLetter) -> Message | None:
    """The dead letter's job as a new message with a fresh retry count; None when it holds none (refused unread)."""
    data = dead_letter.message
    if "args" not in data:
        return None
    return Message(
        queue_name=data["queue_name"],
        actor_name=data["actor_name"],
        args=tuple(data["args"]),
        kwargs=data["kwargs"],
        options={},
    )


def _json_safe(data: dict) -> dict:
    options = {key: value for key, value in data.get("options", {}).items() if key != "traceback"}
    return {**data, "args": list(data.get("args", ())), "options": options}


def _text(data: bytes) -> str:
    # PostgreSQL stores no NUL character in text or JSON.
    return data.decode("utf-8", "replace").replace("\x00", "\ufffd")
