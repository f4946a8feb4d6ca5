"""Cancelling jobs: a request per message id that a queued job never starts past, and that a running one asks about.

A request is a key ``<ns>:backoffice:cancel:<message id>`` in the platform's Redis (the broker's,
or ``REDIS_URL``'s on RabbitMQ), kept a week: longer than any job waits for its eta or a retry.
It is also appended to a log (a sorted set scored by a counter) that each worker process reads
once a second at most, only what is new, into a local set: the ``Cancellation`` middleware
checks that set before every job, so the check costs no Redis round trip per job.

A running job is never stopped from outside: a long one asks :func:`cancel_requested` between
chunks (one GET), commits what it did and ends by raising :class:`JobCancelled`, which is not
retried, not dead-lettered, and logged as "cancelled". Domain services stay free of Dramatiq by
taking a ``should_stop`` callable; the actor passes :func:`cancel_requested`, which outside a
job (a service called from a shell or a test) says False. On the StubBroker the requests live
in this process's memory, as the StubBroker's messages do.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage

from workers.dramatiq_internals.keys import dq_name, messages_key, q_name
from workers.platform_redis import platform_client, platform_namespace
from workers.uniqueness import KEY_OPTION

#: How long a request is kept, in milliseconds.
CANCEL_TTL_MS = 7 * 86_400_000
#: The most requests the log keeps; a worker loading it at start reads at most this many ids.
LOG_CAP = 100_000

# KEYS: the request, the counter, the log. ARGV: message id, ttl in ms, log cap. Returns the request's number.
REQUEST = """
local number = redis.call('incr', KEYS[2])
redis.call('set', KEYS[1], number, 'PX', ARGV[2])
redis.call('zadd', KEYS[3], number, ARGV[1])
redis.call('zremrangebyrank', KEYS[3], 0, -(tonumber(ARGV[3]) + 1))
redis.call('pexpire', KEYS[2], ARGV[2])
redis.call('pexpire', KEYS[3], ARGV[2])
return number
"""


class JobCancelled(Exception):
    """The job stopped because it was asked to, after committing its progress: not a failure, never retried."""


class MemoryRequests:
    """The StubBroker's requests: one process, no Redis."""

    def __init__(self) -> None:
        self.mutex = threading.Lock()
        self.numbers: dict[str, int] = {}

    def add(self, message_id: str) -> int:
        with self.mutex:
            return self.numbers.setdefault(message_id, len(self.numbers) + 1)

    def contains(self, message_id: str) -> bool:
        return message_id in self.numbers

    def since(self, seen: int) -> tuple[dict[str, int], int]:
        with self.mutex:
            return {key: number for key, number in self.numbers.items() if number > seen}, len(self.numbers)


_memory = MemoryRequests()


class RedisRequests:
    """The requests in Redis: a key per message id, and the log workers follow."""

    def __init__(self, client, namespace: str) -> None:
        self.client = client
        self.prefix = f"{namespace}:backoffice:cancel"

    def add(self, message_id: str) -> int:
        keys = [f"{self.prefix}:{message_id}", f"{self.prefix}s:counter", f"{self.prefix}s"]
        return int(self.client.eval(REQUEST, len(keys), *keys, message_id, CANCEL_TTL_MS, LOG_CAP))

    def contains(self, message_id: str) -> bool:
        return bool(self.client.exists(f"{self.prefix}:{message_id}"))

    def since(self, seen: int) -> tuple[dict[str, int], int]:
        """The requests numbered after ``seen`` and the latest number; all of them if Redis lost the counter."""
        pipe = self.client.pipeline(transaction=False)
        pipe.get(f"{self.prefix}s:counter")
        pipe.zrangebyscore(f"{self.prefix}s", f"({seen}", "+inf", withscores=True)
        counter, new = pipe.execute()
        latest = int(counter or 0)
        if latest < seen:  # Redis restarted empty, or the log expired: number again from nothing
            new = self.client.zrangebyscore(f"{self.prefix}s", "-inf", "+inf", withscores=True)
        return {member.decode(): int(score) for member, score in new}, latest


def requests(broker: dramatiq.Broker | None = None) -> RedisRequests | MemoryRequests:
    """Where the cancel requests of ``broker``'s jobs are kept."""
    broker = broker or dramatiq.get_broker()
    client = platform_client(broker)
    return _memory if client is None else RedisRequests(client, platform_namespace(broker))


def request_cancel(message_id: str, *, broker: dramatiq.Broker | None = None) -> None:
    """Ask the job ``message_id`` to stop: it never starts if it has not; a running one stops at its next check."""
    requests(broker).add(message_id)


def cancel_requested() -> bool:
    """True if the running job was asked to stop; False outside a job. One Redis call: ask between chunks."""
    message = CurrentMessage.get_current_message()
    if message is None:
        return False
    return requests().contains(message.message_id)


def raise_if_cancelled() -> None:
    """Raise :class:`JobCancelled` if the running job was asked to stop; call it where its work is committed."""
    if cancel_requested():
        message = CurrentMessage.get_current_message()
        raise JobCancelled(f"{message.actor_name} {message.message_id} was asked to stop")


def cancel_batch(batch_id: int, *, broker: dramatiq.Broker | None = None) -> int:
    """Cancel every job of a batch that has not ended (a report backfill, say); returns how many were asked.

    The batch is finished as cancelled at once, and sends no callback; its jobs that are running
    end as they do, and those still waiting are skipped, each counted as it comes up. Nothing
    a job stored is undone: a backfill run again finds its stored days and computes the others.
    """
    from django.db import transaction
    from django.utils import timezone

    from workers.models import Batch, BatchJob

    with transaction.atomic():
        batch = Batch.objects.select_for_update().get(pk=batch_id)
        if batch.finished_at is not None:
            return 0
        batch.status, batch.finished_at = Batch.Status.CANCELLED, timezone.now()
        batch.save(update_fields=["status", "finished_at"])
        pending = list(
            BatchJob.objects.filter(batch_id=batch_id, status=BatchJob.Status.PENDING).values_list(
                "message_id", flat=True
            )
        )
    for message_id in pending:
        request_cancel(message_id, broker=broker)
    return len(pending)


def release_unique_lock(broker: dramatiq.Broker, message) -> None:
    """Give back the unique lock a cancelled message holds, so that its job can be sent again (a resume)."""
    from workers.middleware.unique import UniqueJobs

    key = message.options.get(KEY_OPTION)
    unique = next((each for each in broker.middleware if isinstance(each, UniqueJobs)), None)
    if key is None or unique is None:
        return
    unique.keeper.let_go(key, message.message_id)
    unique.locks(broker).release(key, message.message_id)


def delayed_jobs(message_ids: list[str], *, broker: dramatiq.Broker | None = None) -> dict[str, dramatiq.Message]:
    """The delayed jobs among ``message_ids`` as they wait (delay queue or a worker's memory), by id.

    An id missing from the answer is not delayed (any more): queued, running, or ended.
    """
    from workers.delayed_jobs import delayed_messages

    broker = broker or dramatiq.get_broker()
    wanted = set(message_ids)
    listed = [each for each in delayed_messages(broker, limit=1_000_000) if each.message_id in wanted]
    found: dict[str, dramatiq.Message] = {}
    if isinstance(broker, RedisBroker):
        for each in listed:
            data = broker.client.hget(messages_key(broker, dq_name(each.queue_name)), each.redis_message_id)
            if data:
                found[each.message_id] = dramatiq.Message.decode(data)
    elif isinstance(broker, StubBroker):
        for name in {each.queue_name for each in listed}:
            for data in list(broker.queues[dq_name(name)].queue):
                message = dramatiq.Message.decode(data)
                if message.message_id in wanted:
                    found[message.message_id] = message
    return found


def run_now(message: dramatiq.Message, *, broker: dramatiq.Broker | None = None) -> dramatiq.Message:
    """Send a copy of a delayed job to run at once, and cancel the original; returns the copy.

    The copy has the same actor, arguments and options (the attempt count included), minus the
    eta and the broker's own id, on its own queue (not the delay queue), under a new message id,
    since the original's id is the one cancelled. A unique job's lock belongs to the original:
    it is given back first, and the copy takes it afresh as it is sent; should a twin take it
    in between, the copy is dropped (``DuplicateJob``) and the twin does the work.
    """
    broker = broker or dramatiq.get_broker()
    dropped = {"eta", "redis_message_id", KEY_OPTION}
    options = {key: value for key, value in message.options.items() if key not in dropped}
    copy = dataclasses.replace(
        message,
        queue_name=q_name(message.queue_name),
        message_id=str(uuid.uuid4()),
        message_timestamp=_now_ms(),
        options=options,
    )
    request_cancel(message.message_id, broker=broker)
    release_unique_lock(broker, message)
    return broker.enqueue(copy)


def _now_ms() -> int:
    return int(time.time() * 1000)
