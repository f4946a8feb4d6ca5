"""Housekeeping of the job platform: prune old job records, put back the messages of dead workers."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import dramatiq
from django.db import models, transaction
from django.utils import timezone
from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker

from workers.models import Batch, DeadLetter

logger = logging.getLogger(__name__)


def job_records_prune(*, older_than: timedelta, chunk_size: int = 1000) -> dict[str, int]:
    """Delete dead letters and finished batches (with their jobs) older than ``older_than``.

    Running batches are kept whatever their age. Rows go in chunks, each in its own
    transaction, so a first prune of a large table never holds its locks for long. Returns
    how many of each were deleted.
    """
    cutoff = timezone.now() - older_than
    deleted = {
        "dead_letters": _delete_in_chunks(DeadLetter.objects.filter(failed_at__lt=cutoff), chunk_size),
        "batches": _delete_in_chunks(Batch.objects.filter(finished_at__lt=cutoff), chunk_size),
    }
    logger.info("pruned job records older than %s: %s", cutoff.isoformat(), deleted)
    return deleted


def _delete_in_chunks(queryset: models.QuerySet, chunk_size: int) -> int:
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(queryset.values_list("pk", flat=True)[:chunk_size])
            if not ids:
                return deleted
            queryset.model.objects.filter(pk__in=ids).delete()
        deleted += len(ids)


def dead_workers_requeue(*, broker: dramatiq.Broker | None = None) -> int:
    """Put the unacknowledged messages of dead workers back on their queues now; returns how many.

    On Redis a worker's fetched messages wait in its own ack sets until it acknowledges them.
    If it dies, only the broker's "maintenance" gives them back: its dispatch script moves the
    ack sets of workers silent for longer than the heartbeat timeout back to their queue, but
    only for the queue of the command at hand, and only on a random few commands in a million.
    Here that same script runs with maintenance on for every queue of a dead worker (and every
    declared queue, which also expires old dead-lettered messages), so recovery does not wait
    on chance. RabbitMQ gives back a closed connection's unacknowledged messages itself, and the
    StubBroker has no workers: for them this does nothing.
    """
    broker = broker or dramatiq.get_broker()
    if not isinstance(broker, RedisBroker):
        return 0
    client, namespace = broker.client, broker.namespace
    silent_since = int(time.time() * 1000) - broker.heartbeat_timeout
    queue_names = set(broker.get_declared_queues()) | set(broker.get_declared_delay_queues())
    held = 0
    for worker_id in client.zrangebyscore(f"{namespace}:__heartbeats__", 0, silent_since):
        # Ack sets are named <namespace>:__acks__.<worker id>.<queue name>, as the script names them.
        prefix = f"{namespace}:__acks__.{worker_id.decode()}."
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            queue_names.add(key.decode()[len(prefix) :])
            held += client.scard(key)

    maintainer = RedisBroker(
        client=client,
        namespace=namespace,
        middleware=[],
        heartbeat_timeout=broker.heartbeat_timeout,
        dead_message_ttl=broker.dead_message_ttl,
        maintenance_chance=MAINTENANCE_SCALE,
    )
    # The script records a heartbeat for the id it runs as: this broker's own, so no phantom
    # worker shows up as live for a minute after each run.
    maintainer.broker_id = broker.broker_id
    for queue_name in sorted(queue_names):
        maintainer.do_qsize(queue_name)
    if held:
        logger.warning("put back %d unacknowledged message(s) of dead workers", held)
    return held
