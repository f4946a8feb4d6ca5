"""Unique jobs: at most one job per actor and arguments is queued, or running, at a time.

Dramatiq has no unique jobs and no maintained extension adds them, so they are written here:
a lock per job key, taken and released with single atomic Redis commands.

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

Every lock also expires after ``unique_ttl`` milliseconds, so a worker that dies holding one
does not hold it for ever. A dropped send raises ``DuplicateJob`` from ``actor.send()``; the
platform's senders (``enqueue_on_commit``, ``enqueue_many``, the outbox) log it and move on.

Locks live in the broker's Redis (in ``REDIS_URL``'s on RabbitMQ, and in process memory on the
StubBroker, which is itself a process's memory). Retries re-send a message that already holds
its lock, so a retry is never dropped as its own duplicate.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable

import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.errors import ActorNotFound
from dramatiq.logging import get_logger
from dramatiq.middleware import Middleware, MiddlewareError, SkipMessage

UNTIL_EXECUTED = "until_executed"
UNTIL_STARTED = "until_started"
WHILE_EXECUTING = "while_executing"
MODES = (UNTIL_EXECUTED, UNTIL_STARTED, WHILE_EXECUTING)

#: The message option naming the lock a message took (or takes, for ``while_executing``).
KEY_OPTION = "unique_key"


class DuplicateJob(MiddlewareError):
    """A unique job was sent while its twin holds the lock; the send was dropped.

    A ``MiddlewareError``, so that the broker lets it out of ``before_enqueue`` to the sender.
    """


class UniqueModeError(MiddlewareError, ValueError):
    """An actor's ``unique`` option names no mode."""


class RedisLocks:
    """Locks as Redis keys whose value is the owning message id."""

    # Delete only the owner's lock: one that expired and was taken by another job is left alone.
    RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.release_script = client.register_script(self.RELEASE)

    def acquire(self, key: str, owner: str, ttl_ms: int) -> bool:
        return bool(self.client.set(key, owner, nx=True, px=ttl_ms))

    def release(self, key: str, owner: str) -> bool:
        return bool(self.release_script(keys=[key], args=[owner]))

    def owner(self, key: str) -> str | None:
        value = self.client.get(key)
        return value.decode() if value is not None else None


class MemoryLocks:
    """The same locks in one process's memory, for the StubBroker."""

    def __init__(self) -> None:
        self.mutex = threading.Lock()
        self.locks: dict[str, tuple[str, float]] = {}

    def acquire(self, key: str, owner: str, ttl_ms: int) -> bool:
        with self.mutex:
            if self.owner_locked(key) is not None:
                return False
            self.locks[key] = (owner, time.monotonic() + ttl_ms / 1000)
            return True

    def release(self, key: str, owner: str) -> bool:
        with self.mutex:
            if self.owner_locked(key) != owner:
                return False
            del self.locks[key]
            return True

    def owner(self, key: str) -> str | None:
        with self.mutex:
            return self.owner_locked(key)

    def owner_locked(self, key: str) -> str | None:
        owner, expires = self.locks.get(key, (None, 0.0))
        return owner if expires > time.monotonic() else None


def default_key(actor_name: str, args: tuple, kwargs: dict) -> str:
    """The actor's name and a digest of its arguments, the same for equal JSON arguments."""
    payload = json.dumps([list(args), kwargs], sort_keys=True, separators=(",", ":"), default=str)
    return f"{actor_name}:{hashlib.sha256(payload.encode()).hexdigest()[:32]}"


class UniqueJobs(Middleware):
    """Drop or defer a job while its twin holds the lock.

    Must come before Retries in the middleware list, so that its after-hooks run once Retries
    has decided whether a failure is final.

    Per-actor options:
      unique(str): ``until_executed``, ``until_started`` or ``while_executing``.
      unique_key(Callable[..., str]): Called with the job's arguments; the default uses all of them.
      unique_ttl(int): Lock expiry in milliseconds. Defaults to the middleware's ``ttl``.
      unique_requeue_delay(int): ``while_executing`` only: how long a job whose twin runs waits
        before it is tried again, in milliseconds.

    Parameters:
      ttl(int): Default lock expiry, in milliseconds. Defaults to one hour.
      requeue_delay(int): Default ``unique_requeue_delay``. Defaults to five seconds.
      redis_url(str): The Redis for locks when the broker is not Redis. Defaults to settings.REDIS_URL.
      namespace(str): Prefix of the lock keys.
    """

    def __init__(
        self,
        *,
        ttl: int = 3_600_000,
        requeue_delay: int = 5_000,
        redis_url: str | None = None,
        namespace: str = "backoffice:unique",
    ) -> None:
        self.logger = get_logger(__name__, type(self))
        self.ttl = ttl
        self.requeue_delay = requeue_delay
        self.redis_url = redis_url
        self.namespace = namespace
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
                    self._locks = RedisLocks(broker.client)
                elif isinstance(broker, StubBroker):
                    self._locks = MemoryLocks()
                else:
                    from django.conf import settings  # the broker is built before settings are read

                    self._locks = RedisLocks(redis.Redis.from_url(self.redis_url or settings.REDIS_URL))
            return self._locks

    def reset(self) -> None:
        """Forget the lock store (the StubBroker's locks with it); the next use makes a new one."""
        with self._locks_mutex:
            self._locks = None

    def lock_key(self, message, options: dict) -> str:
        """The lock's key: the actor's ``unique_key`` of the arguments, or all of them."""
        key_function: Callable[..., str] | None = options.get("unique_key")
        if key_function is not None:
            key = f"{message.actor_name}:{key_function(*message.args, **message.kwargs)}"
        else:
            key = default_key(message.actor_name, message.args, message.kwargs)
        return f"{self.namespace}:{key}"

    def before_enqueue(self, broker, message, delay) -> None:
        """Take the lock of a new ``until_*`` job, or drop the send if its twin holds it."""
        options = self._options(broker, message)
        if options.get("unique") not in (UNTIL_EXECUTED, UNTIL_STARTED) or KEY_OPTION in message.options:
            return  # not unique at send time, or a retry of a job that took its lock already
        key = self.lock_key(message, options)
        if not self.locks(broker).acquire(key, message.message_id, self._ttl(options)):
            self.logger.info("Dropped duplicate %s %s: its twin holds %s.", message.actor_name, message.message_id, key)
            raise DuplicateJob(f"{message.actor_name} with these arguments is already queued or running")
        message.options[KEY_OPTION] = key

    def before_process_message(self, broker, message) -> None:
        """Release an ``until_started`` lock; take a ``while_executing`` one or requeue the job."""
        options = self._options(broker, message)
        mode = options.get("unique")
        if mode == UNTIL_STARTED and KEY_OPTION in message.options:
            self.locks(broker).release(message.options[KEY_OPTION], message.message_id)
        elif mode == WHILE_EXECUTING:
            key = message.options.setdefault(KEY_OPTION, self.lock_key(message, options))
            if not self.locks(broker).acquire(key, message.message_id, self._ttl(options)):
                delay = options.get("unique_requeue_delay", self.requeue_delay)
                self.logger.info("%s %s waits %d ms: its twin runs.", message.actor_name, message.message_id, delay)
                broker.enqueue(message.copy(), delay=delay)
                raise SkipMessage(f"{message.actor_name}: a job with the same key is running")

    def after_process_message(self, broker, message, *, result=None, exception=None) -> None:
        """Release the lock when the job has ended: success, failure for good, or any end of a run."""
        mode = self._options(broker, message).get("unique")
        ended = exception is None or message.failed
        if (mode == UNTIL_EXECUTED and ended) or mode == WHILE_EXECUTING:
            self._release(broker, message)

    def after_skip_message(self, broker, message) -> None:
        """A skipped job that failed (malformed arguments) gives its lock back."""
        if message.failed:
            self._release(broker, message)

    def _release(self, broker, message) -> None:
        key = message.options.get(KEY_OPTION)
        if key is not None:
            self.locks(broker).release(key, message.message_id)

    def _options(self, broker, message) -> dict:
        try:
            return broker.get_actor(message.actor_name).options
        except ActorNotFound:  # an actor this process does not know: nothing to lock
            return {}

    def _ttl(self, options: dict) -> int:
        return int(options.get("unique_ttl", self.ttl))
