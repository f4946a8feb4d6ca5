"""Enqueueing jobs: after the surrounding transaction commits, or (named as such) right away."""

from __future__ import annotations

from typing import Any

import dramatiq

from workers import queues
from workers.outbox import outbox_add


def build_message(actor: dramatiq.Actor, args: tuple, kwargs: dict, *, queue: str | None = None) -> dramatiq.Message:
    """The message for one call of ``actor``, routed to ``queue`` when given."""
    message = actor.message_with_options(args=args, kwargs=kwargs)
    if queue is not None and queue != actor.queue_name:
        message = message.copy(queue_name=queues.check(queue))
    return message


def enqueue_on_commit(
    actor: dramatiq.Actor,
    *args: Any,
    queue: str | None = None,
    delay: int | None = None,
    using: str | None = None,
    **kwargs: Any,
) -> None:
    """Send the job once the current transaction commits; drop it if it rolls back.

    A worker must never see a row that does not exist yet, so every enqueue that follows a
    database write goes through here. The job is written to the outbox in the same
    transaction, so a broker that is down at commit time delays it instead of losing it.
    Outside a transaction it sends at once.

    Parameters:
      queue: Route to this configured queue instead of the actor's own.
      delay: Wait this long before the job may run, in milliseconds.
    """
    outbox_add([build_message(actor, args, kwargs, queue=queue)], delay=delay, broker=actor.broker, using=using)


def enqueue_rollback_unsafe(
    actor: dramatiq.Actor, *args: Any, queue: str | None = None, delay: int | None = None, **kwargs: Any
) -> dramatiq.Message:
    """Send the job now, even inside a transaction that may still roll back.

    Only for callers that have no transaction to wait for (a command run by hand, the
    scheduler); anything following a write uses ``enqueue_on_commit``.
    """
    return actor.broker.enqueue(build_message(actor, args, kwargs, queue=queue), delay=delay)
