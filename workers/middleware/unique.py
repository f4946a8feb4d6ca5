"""Unique jobs: at most one job per actor and arguments is queued, or running, at a time.

Dramatiq has no unique jobs and no maintained extension adds them, so they are written here:
a lock per job key, owned by one message, each change of it one atomic step (``workers.unique_locks``).
The modes, the job's key and ``DuplicateJob`` are named in ``workers.uniqueness``, for senders too.

An actor opts in with the ``unique`` option::

    @dramatiq.actor(queue_name="low", unique="until_executed")
    def import_data(import_id): ...

Modes (the lock is always keyed by the actor and its arguments, or by ``unique_key``):

- ``until_executed``: taken when the job is sent, released when it succeeds or fails for good.
  A second send meanwhile (queued, running or waiting for a retry) is dropped.
- ``until_started``: taken when the job is sent, released when a worker starts it. A second
  send while one waits in the queue is dropped; one sent while it runs is queued.
- ``while_executing``: taken when a worker starts the job, released when it ends. Any number
  may be queued; a job whose twin is running goes back to the queue after ``unique_requeue_delay``.

A lock belongs to the message that took it: the same message sent again (by the outbox relay
after a send that failed once the lock was taken, as a retry, or falling due after a delay)
takes it again instead of being dropped as its own duplicate, unless the broker already holds
that very message. A job that fails for good or is dead-lettered, even by a middleware that
skips it, gives its lock back; a lock given back stays given back.

A lock expires ``unique_ttl`` milliseconds after the last thing that kept it alive, so that a
dead worker's lock frees itself, but never under live work: each send sets its expiry to the
delay plus the ttl; while the job runs, the process's ``LockKeeper`` extends it every third of
the ttl (at most a minute apart); and ``unique_locks_refresh(broker)``, run by the periodic
housekeeping, extends every lock whose message the broker still holds (queued behind a backlog,
waiting for a retry, or held by a worker). On Redis a lock records its message's queue and
``redis_message_id``, and the broker keeps the message in ``<namespace>:<queue>.msgs`` until it
is acknowledged. RabbitMQ cannot be asked whether it holds a message: there a job that waits in
its queue longer than the send's delay plus the ttl loses its lock, and a twin may get in.

A dropped send raises ``DuplicateJob`` from ``actor.send()``; the platform's senders
(``enqueue_on_commit``, ``enqueue_many``, the outbox) log it and move on. Locks live in the
broker's Redis (in ``REDIS_URL``'s on RabbitMQ) and, with the same behaviour, in process memory
on the StubBroker, which is itself a process's memory.
"""

from __future__ import annotations

import threading

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.logging import get_logger
from dramatiq.middleware import Middleware, SkipMessage

from workers.dramatiq_internals.keys import queue_key
from workers.lock_keeper import LockKeeper
from workers.middleware.options import option
from workers.platform_redis import platform_client
from workers.unique_locks import AGAIN, FIRST, QUEUED, RENEW, TAKEN, MemoryLocks, RedisLocks, stub_queued
from workers.uniqueness import (
    KEY_OPTION,
    MODES,
    UNTIL_EXECUTED,
    UNTIL_STARTED,
    WHILE_EXECUTING,
    DuplicateJob,
    UniqueModeError,
    job_key,
)


class UniqueJobs(Middleware):
    """Drop or defer a job while its twin holds the lock, and keep the lock alive while the job lives.

    Must come before Retries in the middleware list, so that its after-hooks run once Retries
    has decided whether a failure is final (and has sent the retry).

    Per-actor options (all but ``unique_key`` also message options, which win; ``workers.middleware.options``):
      unique(str): ``until_executed``, ``until_started`` or ``while_executing``.
      unique_key(Callable[..., str]): Called with the job's arguments; the default uses all of them.
      unique_ttl(int): How long a lock outlives what keeps it alive, in milliseconds. Defaults to
        the middleware's ``ttl``.
      unique_requeue_delay(int): ``while_executing`` only: how long a job whose twin runs waits
        before it is tried again, in milliseconds.

    Parameters:
      ttl(int): Default ``unique_ttl``, in milliseconds. Defaults to one hour.
      requeue_delay(int): Default ``unique_requeue_delay``. Defaults to five seconds.
      redis_url(str): The Redis for locks when the broker is not Redis. Defaults to settings.REDIS_URL.
      namespace(str): Prefix of the lock keys.
      keep_interval(float): The longest time between two extensions of a running job's lock, in
        seconds. Defaults to one minute.
    """

    def __init__(
        self,
        *,
        ttl: int = 3_600_000,
        requeue_delay: int = 5_000,
        redis_url: str | None = None,
        namespace: str = "backoffice:unique",
        keep_interval: float = 60.0,
    ) -> None:
        self.logger = get_logger(__name__, type(self))
        self.ttl = ttl
        self.requeue_delay = requeue_delay
        self.redis_url = redis_url
        self.namespace = namespace
        self.keeper = LockKeeper(longest_wait=keep_interval)
        self._locks = None
        self._locks_mutex = threading.Lock()

    @property
    def actor_options(self) -> set[str]:
        return {"unique", "unique_key", "unique_ttl", "unique_requeue_delay"}

    def before_declare_actor(self, broker, actor) -> None:
        """Refuse an unknown mode at import time, rather than run the actor without a lock."""
        mode = actor.options.get("unique")
        if mode is not None and mode not in MODES:
            raise UniqueModeError(f"actor {actor.actor_name}: unique={mode!r} is not one of {', '.join(MODES)}")

    def locks(self, broker) -> RedisLocks | MemoryLocks:
        """The lock store for ``broker``, made on first use (a send or a job that needs it)."""
        with self._locks_mutex:
            if self._locks is None:
                if isinstance(broker, RedisBroker):
                    self._locks = RedisLocks(broker.client, messages_prefix=queue_key(broker, ""))
                elif isinstance(broker, StubBroker):
                    self._locks = MemoryLocks(queued=stub_queued(broker))
                else:
                    client = redis.Redis.from_url(self.redis_url) if self.redis_url else platform_client(broker)
                    self._locks = RedisLocks(client)
            return self._locks

    def reset(self) -> None:
        """Forget the lock store (the StubBroker's locks with it); the next use makes a new one."""
        with self._locks_mutex:
            self._locks = None

    def lock_key(self, broker, message) -> str:
        """The lock's key: the middleware's namespace and the job's key (``workers.uniqueness.job_key``)."""
        return f"{self.namespace}:{job_key(broker, message)}"

    def before_enqueue(self, broker, message, delay) -> None:
        """Take the lock of an ``until_*`` job until the delay and the ttl have passed, or drop the send."""
        mode = option(broker, message, "unique")
        if mode not in (UNTIL_EXECUTED, UNTIL_STARTED):
            return
        locks, ttl, resent = self.locks(broker), self._ttl(broker, message), KEY_OPTION in message.options
        key = message.options[KEY_OPTION] if resent else self.lock_key(broker, message)
        # A retry or a delayed job falling due already holds its lock; an until_started one gave
        # it back when it started, and a lock given back stays given back.
        how = FIRST if not resent else AGAIN if mode == UNTIL_EXECUTED else RENEW
        where = locks.where(message)
        taken = locks.take(key, message.message_id, ttl=ttl, expires_in=(delay or 0) + ttl, where=where, how=how)
        if resent:
            if taken != TAKEN and how == AGAIN:
                self.logger.warning(
                    "%s %s is sent again without its lock: a twin took %s.", message.actor_name, message.message_id, key
                )
            return
        if taken == QUEUED:
            self.logger.info("Dropped resend of %s %s: it is queued already.", message.actor_name, message.message_id)
            raise DuplicateJob(f"{message.actor_name} message {message.message_id} is already queued")
        if taken != TAKEN:
            self.logger.info("Dropped duplicate %s %s: its twin holds %s.", message.actor_name, message.message_id, key)
            raise DuplicateJob(f"{message.actor_name} with these arguments is already queued or running")
        message.options[KEY_OPTION] = key

    def before_process_message(self, broker, message) -> None:
        """Release an ``until_started`` lock; hold an ``until_executed`` one while the job runs; take a
        ``while_executing`` one or requeue the job."""
        mode = option(broker, message, "unique")
        if mode == UNTIL_STARTED and KEY_OPTION in message.options:
            self.locks(broker).release(message.options[KEY_OPTION], message.message_id)
        elif mode == UNTIL_EXECUTED and KEY_OPTION in message.options:
            if not self._hold(broker, message, message.options[KEY_OPTION]):
                self.logger.warning(
                    "%s %s runs without its lock: a twin took it.", message.actor_name, message.message_id
                )
        elif mode == WHILE_EXECUTING:
            key = message.options.setdefault(KEY_OPTION, self.lock_key(broker, message))
            if not self._hold(broker, message, key):
                delay = int(option(broker, message, "unique_requeue_delay", self.requeue_delay))
                self.logger.info("%s %s waits %d ms: its twin runs.", message.actor_name, message.message_id, delay)
                broker.enqueue(message.copy(), delay=delay)
                raise SkipMessage(f"{message.actor_name}: a job with the same key is running")

    def after_process_message(self, broker, message, *, result=None, exception=None) -> None:
        """Stop keeping the lock; release it when the job has ended: success, failure for good, or
        any end of a ``while_executing`` run."""
        key = message.options.get(KEY_OPTION)
        if key is None:
            return
        self.keeper.let_go(key, message.message_id)
        mode = option(broker, message, "unique")
        ended = exception is None or message.failed
        if (mode == UNTIL_EXECUTED and ended) or mode == WHILE_EXECUTING:
            self.locks(broker).release(key, message.message_id)

    def after_skip_message(self, broker, message) -> None:
        """A skipped job that was dead-lettered (malformed, too old, crashing) gives its lock back."""
        key = message.options.get(KEY_OPTION)
        if key is None:
            return
        self.keeper.let_go(key, message.message_id)
        if message.failed:
            self.locks(broker).release(key, message.message_id)

    def after_worker_shutdown(self, broker, worker) -> None:
        """The worker's jobs are over: stop the keeper's thread."""
        self.keeper.stop()

    def _hold(self, broker, message, key: str) -> bool:
        """Take (or keep) the lock for this run and have the keeper extend it; False if a twin holds it."""
        locks, ttl = self.locks(broker), self._ttl(broker, message)
        where = locks.where(message)
        if locks.take(key, message.message_id, ttl=ttl, expires_in=ttl, where=where, how=AGAIN) != TAKEN:
            return False
        self.keeper.keep(locks, key, message.message_id, ttl=ttl)
        return True

    def _ttl(self, broker, message) -> int:
        return int(option(broker, message, "unique_ttl", self.ttl))


def unique_locks_refresh(broker: dramatiq.Broker | None = None) -> int:
    """Extend by its ttl the lock of every unique job the broker still holds; returns how many.

    Queued, delayed (a retry waiting) or held by a worker: a job waiting longer than its ttl
    behind a backlog keeps its lock, while a lock whose message is gone is left to expire. The
    lock keys are few (one per unique job alive), so they are walked with SCAN. On RabbitMQ,
    which cannot be asked whether it holds a message, this does nothing and returns 0.
    """
    broker = broker or dramatiq.get_broker()
    unique = next((middleware for middleware in broker.middleware if isinstance(middleware, UniqueJobs)), None)
    if unique is None:
        return 0
    return unique.locks(broker).refresh_queued(f"{unique.namespace}:")
