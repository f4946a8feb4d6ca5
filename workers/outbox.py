"""The transactional outbox: jobs commit with the data they are about, and reach the broker after.

``transaction.on_commit`` alone loses a job when the broker is unreachable at the moment of
the commit, or the process dies right after it. Here each job is first written as an
``OutboxMessage`` row in the same transaction; once the transaction commits, the rows are sent
and deleted at once (the fast path), and whatever could not be sent is sent later by
``outbox_relay``, which every worker's housekeeping runs every few seconds. A job is therefore sent at least once
and never before its data exists; jobs are written to be safe to run twice.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import dramatiq
from django.db import DatabaseError, transaction
from django.db.models import Count, Min
from django.utils import timezone
from dramatiq import Message

from workers.bulk import CHUNK_SIZE, chunked, enqueue_many
from workers.middleware.message_size import MessageTooLarge, check_message_size
from workers.models import OutboxMessage
from workers.tracing import carry_context

logger = logging.getLogger(__name__)

#: Rows younger than this are left to the fast path of the process that wrote them.
RELAY_AFTER = timedelta(seconds=10)
#: Rows sent per relay transaction.
RELAY_CHUNK = 5000


def outbox_add(
    messages: list[Message], *, delay: int | None = None, broker: dramatiq.Broker | None = None, using=None
) -> None:
    """Send the messages once the current transaction commits; outside one, send them now."""
    broker = broker or dramatiq.get_broker()
    if not transaction.get_connection(using).in_atomic_block:
        enqueue_many(messages, delay=delay, broker=broker)
        return
    for message in messages:
        # The caller's trace goes with the row: a relay sends it later, from no request.
        carry_context(message)
        # Refused here, in the caller's transaction, not by every relay after it.
        check_message_size(broker, message)
    rows = OutboxMessage.objects.using(using).bulk_create(
        OutboxMessage(message=_as_json(message), delay=delay) for message in messages
    )
    transaction.on_commit(lambda: _send(rows, broker, using=using), using=using)


def outbox_relay(
    *, older_than: timedelta = RELAY_AFTER, chunk_size: int = RELAY_CHUNK, broker: dramatiq.Broker | None = None
) -> int:
    """Send what the fast path could not (the broker was down, the process died); returns how many.

    Drains the outbox, ``chunk_size`` rows per transaction, until no row older than
    ``older_than`` (at the start) is left or the broker refuses a send. Rows another relay has
    locked are skipped, so relays on several hosts share the work instead of doubling it.
    """
    broker = broker or dramatiq.get_broker()
    cutoff = timezone.now() - older_than
    total = 0
    while True:
        with transaction.atomic():
            rows = list(
                OutboxMessage.objects.select_for_update(skip_locked=True)
                .filter(created_at__lt=cutoff)
                .order_by("pk")[:chunk_size]
            )
            sent = _send(rows, broker)
        total += sent
        if not rows or sent < len(rows):
            return total


def outbox_backlog() -> dict:
    """How many jobs wait in the outbox for the broker, and since when the oldest has (for the dashboard)."""
    return OutboxMessage.objects.aggregate(count=Count("pk"), oldest=Min("created_at"))


def _send(rows: list[OutboxMessage], broker: dramatiq.Broker, using=None) -> int:
    """Send the rows in bulk, a chunk at a time, deleting each chunk once the broker has it.

    Returns how many rows left the outbox: sent, or refused for good as oversized. A database
    error inside the relay's transaction is raised, not logged: that transaction cannot commit
    any more (PostgreSQL aborts it at a failed statement, Django marks it when a savepoint
    cannot be rolled back), and leaving it quietly would roll back the deletes of the chunks
    sent so far while counting them as sent.
    """
    done = 0
    for chunk in chunked(rows, CHUNK_SIZE):
        try:
            try:
                _send_chunk(chunk, broker)
            except MessageTooLarge:
                # Stored before the limit was lowered: such a row can never be sent, the rest can.
                kept = _refuse_oversized(chunk, broker, using)
                done += len(chunk) - len(kept)
                chunk = kept
                _send_chunk(chunk, broker)
        except Exception as error:
            connection = transaction.get_connection(using)
            if connection.in_atomic_block and (isinstance(error, DatabaseError) or transaction.get_rollback(using)):
                raise
            logger.warning(
                "Could not send %d outbox message(s); the relay will send them.", len(rows) - done, exc_info=True
            )
            break
        OutboxMessage.objects.using(using).filter(pk__in=[row.pk for row in chunk]).delete()
        done += len(chunk)
    return done


def _send_chunk(chunk: list[OutboxMessage], broker: dramatiq.Broker) -> None:
    for delay, group in _by_delay(chunk):
        enqueue_many([Message(**row.message) for row in group], delay=delay, broker=broker)


def _refuse_oversized(chunk: list[OutboxMessage], broker: dramatiq.Broker, using) -> list[OutboxMessage]:
    """Dead-letter and delete the rows over the size limit; returns the others."""
    from workers.dead_letters import record_refused

    kept = []
    for row in chunk:
        message = Message(**row.message)
        try:
            check_message_size(broker, message)
        except MessageTooLarge as error:
            logger.error("Outbox message %s of %s refused for good: %s", message.message_id, message.actor_name, error)
            record_refused(
                data=message.encode(),
                reason="oversized",
                error=str(error),
                queue_name=message.queue_name,
                message_id=message.message_id,
            )
            OutboxMessage.objects.using(using).filter(pk=row.pk).delete()
        else:
            kept.append(row)
    return kept


def _by_delay(rows: list[OutboxMessage]) -> list[tuple[int | None, list[OutboxMessage]]]:
    groups: dict[int | None, list[OutboxMessage]] = {}
    for row in rows:
        groups.setdefault(row.delay, []).append(row)
    return list(groups.items())


def _as_json(message: Message) -> dict:
    data = message.asdict()
    return {**data, "args": list(data["args"])}
