"""Housekeeping of the job platform: prune old job records, put back the messages of dead workers."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import dramatiq
from django.db import models, transaction
from django.utils import timezone
from dramatiq.brokers.redis import RedisBroker

from workers.dramatiq_internals.keys import acks_key, acks_pattern, heartbeats_key, messages_key, queue_key, xq_name
from workers.models import Batch, DeadLetter

logger = logging.getLogger(__name__)

#: A duty that takes longer than this is named in a warning: every later duty and round waited for it.
SLOW_DUTY_SECONDS = 10.0

# Put a dead worker's unacknowledged messages of one queue back at the head of that queue (they
# were taken first, so they run first, ahead of any backlog), and forget the ack set.
# KEYS: the ack set, the queue, the queue's message hash (workers.dramatiq_internals.keys).
REQUEUE_DEAD = """
local ids = redis.call('smembers', KEYS[1])
local moved = 0
for i = #ids, 1, -1 do
    if redis.call('hexists', KEYS[3], ids[i]) == 1 then
        redis.call('lpush', KEYS[2], ids[i])
        moved = moved + 1
    end
end
redis.call('del', KEYS[1])
return moved
"""


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
    """Put the unacknowledged messages of dead workers back at the head of their queues; returns how many.

    On Redis a worker's fetched messages wait in its own ack sets until it acknowledges them.
    If it dies, the broker's own "maintenance" gives them back only on a random few commands in
    a million, and at the tail of the queue, behind any backlog. Here every ack set of a worker
    silent for longer than the heartbeat timeout goes back at the head of its queue at once,
    and dead-lettered messages older than the broker's ``dead_message_ttl`` are dropped (the
    rest of that maintenance). RabbitMQ gives back a closed connection's unacknowledged
    messages itself, and the StubBroker has no workers: for them this does nothing.
    """
    broker = broker or dramatiq.get_broker()
    if not isinstance(broker, RedisBroker):
        return 0
    client = broker.client
    now_ms = int(time.time() * 1000)
    script = client.register_script(REQUEUE_DEAD)
    moved = 0
    for worker_id in client.zrangebyscore(heartbeats_key(broker), 0, now_ms - broker.heartbeat_timeout):
        prefix = acks_key(broker, worker_id.decode(), "")
        for key in client.scan_iter(match=acks_pattern(broker, worker_id=worker_id.decode()), count=1000):
            queue_name = key.decode()[len(prefix) :]
            back = int(script(keys=[key, queue_key(broker, queue_name), messages_key(broker, queue_name)]))
            if back and hasattr(broker, "ring"):
                broker.ring(queue_name)  # idle workers wait for a ring, not for a look at the queue
            moved += back
        client.zrem(heartbeats_key(broker), worker_id)
    if _due(broker, "dead_lettered_prune", every=timedelta(minutes=1)):
        _prune_dead_lettered(broker, now_ms)
    if moved:
        logger.warning("put back %d unacknowledged message(s) of dead workers", moved)
    return moved


def _prune_dead_lettered(broker: RedisBroker, now_ms: int) -> None:
    client = broker.client
    for queue_name in broker.get_declared_queues():
        dead = queue_key(broker, xq_name(queue_name))
        ids = client.zrangebyscore(dead, 0, now_ms - broker.dead_message_ttl, start=0, num=1000)
        if ids:
            pipe = client.pipeline()
            pipe.zrem(dead, *ids)
            pipe.hdel(messages_key(broker, xq_name(queue_name)), *ids)
            pipe.execute()


def housekeeping_round(*, broker: dramatiq.Broker, recover_dead_workers: bool = True) -> dict[str, int]:
    """One round of the platform's periodic duties; a duty that fails is logged and the rest still run.

    Returns what each duty did (how many messages or rows), for the log.
    """
    # The outbox imports the bulk sender, which imports the middleware that runs this.
    from workers.batches import batches_reconcile
    from workers.flow_parking import parked_jobs_wake
    from workers.history_prune import history_prune
    from workers.metrics_compaction import metrics_compact
    from workers.middleware.unique import unique_locks_refresh
    from workers.outbox import outbox_relay

    # Recovery first: it needs only Redis, so a database duty that is slow cannot hold it up.
    duties = {}
    if recover_dead_workers:
        duties["dead_workers_requeued"] = lambda: dead_workers_requeue(broker=broker)
        # Jobs parked on a key whose holders died, by a worker that died too.
        duties["parked_jobs_woken"] = lambda: parked_jobs_wake(broker)
    duties["unique_locks_refreshed"] = lambda: unique_locks_refresh(broker)
    duties["outbox_relayed"] = lambda: outbox_relay(broker=broker)
    # Counting every running batch's jobs is heavier, and only repairs what a failed write left.
    if _due(broker, "batches_reconcile", every=timedelta(minutes=1)):
        duties["batches_finished"] = batches_reconcile
    if _due(broker, "history_prune", every=timedelta(minutes=1)):
        duties["history_pruned"] = history_prune
    if _due(broker, "metrics_compact", every=timedelta(minutes=5)):
        duties["metric_rows_merged"] = metrics_compact
    done = {}
    for name, duty in duties.items():
        started = time.monotonic()
        try:
            done[name] = duty()
        except Exception:
            logger.warning("housekeeping: %s failed; the next round tries again", name, exc_info=True)
        took = time.monotonic() - started
        if took > SLOW_DUTY_SECONDS:
            logger.warning("housekeeping: %s took %.1f s, holding up the rounds after it", name, took)
    return done


#: Per duty, the earliest time (monotonic) this process asks Redis again whether it is due.
_next_ask: dict[str, float] = {}


def _due(broker: dramatiq.Broker, duty: str, *, every: timedelta) -> bool:
    """True at most once per ``every`` across the cluster (the StubBroker's callers run duties by hand).

    A process that ran the duty does not ask again before ``every`` has passed: it cannot be due
    sooner, and the rounds of an idle worker cost Redis nothing for duties not due.
    """
    from workers.platform_redis import platform_client, platform_namespace

    client = platform_client(broker)
    key = f"{platform_namespace(broker)}:backoffice:housekeeping:{duty}"
    if client is None:
        return True
    if time.monotonic() < _next_ask.get(key, 0.0):
        return False
    if not client.set(key, 1, nx=True, px=int(every.total_seconds() * 1000)):
        return False
    _next_ask[key] = time.monotonic() + every.total_seconds()
    return True
