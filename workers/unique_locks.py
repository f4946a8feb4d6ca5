"""Unique-job locks: one key per job, owned by a message, kept alive while that message is queued or running.

A lock's value is ``<message id> <ttl in ms>``, followed where the broker can be asked by
``<queue> <id in the queue>``: where the owning message waits. The owner's id lets the owner's
own resend (an outbox relay after a failed send, a retry) take its lock again instead of being
dropped as its own duplicate; the place lets ``refresh_queued`` extend exactly the locks whose
message the broker still holds, however long it waits behind a backlog. Every change of a
lock is one atomic step: a Lua script on Redis, a mutex in memory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from dramatiq import Message
from dramatiq.brokers.stub import StubBroker

from workers.dramatiq_internals.keys import MESSAGES_SUFFIX

#: How a send takes its lock. FIRST: a new send, which gets a free lock or its own message's,
#: unless the broker already holds that very message. AGAIN: a retry, a delayed message falling
#: due or a start, which gets a free lock or its own. RENEW: its own lock only, so that a lock
#: given back stays given back.
FIRST, AGAIN, RENEW = "first", "again", "renew"
#: What ``take`` found: the lock is now the message's; another message holds it; the broker
#: already holds this very message (a resend of a send that went through).
TAKEN, HELD, QUEUED = 1, 0, -1

#: (queue name, the message's id in that queue)
Where = tuple[str, str]

_OWNER = "local function owner(value) return value and string.match(value, '^%S+') end\n"


def lock_value(owner: str, ttl: int, where: Where | None) -> str:
    # Message ids and queue names hold no spaces (UUIDs, hex, Dramatiq's queue name pattern).
    return " ".join([owner, str(ttl), *(where or ())])


def parse_value(value: bytes | str) -> tuple[str, int, Where | None]:
    """The owner, the ttl (0 if the value predates it) and the place of a lock's value."""
    fields = (value.decode() if isinstance(value, bytes) else value).split(" ")
    ttl = int(fields[1]) if len(fields) > 1 else 0
    return fields[0], ttl, (fields[2], fields[3]) if len(fields) == 4 else None


class RedisLocks:
    """Locks as Redis keys. ``messages_prefix`` is the broker's namespace and ``:`` when the
    broker's messages live in this same Redis (``<prefix><queue>.msgs`` holds a message until it
    is acknowledged), None when they do not and no lock can say where its message is."""

    # ARGV: the owner, the new value, its expiry in ms, how (FIRST, AGAIN or RENEW), messages_prefix.
    TAKE = (
        _OWNER
        + """
local current = redis.call('get', KEYS[1])
if current then
  if owner(current) ~= ARGV[1] then return 0 end
  if ARGV[4] == 'first' and ARGV[5] ~= '' then
    local _, _, queue, id = string.match(current, '^(%S+) (%S+) (%S+) (%S+)$')
    if queue and redis.call('hexists', ARGV[5] .. queue .. '<messages suffix>', id) == 1 then return -1 end
  end
elseif ARGV[4] == 'renew' then
  return 0
end
redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""
    ).replace("<messages suffix>", MESSAGES_SUFFIX)
    # The owner's lock lives at least ARGV[2] ms more (never less than it had), and with a
    # second key only while that hash still holds the message ARGV[3].
    EXTEND = (
        _OWNER
        + """
if owner(redis.call('get', KEYS[1])) ~= ARGV[1] then return 0 end
if #KEYS > 1 and redis.call('hexists', KEYS[2], ARGV[3]) == 0 then return 0 end
if redis.call('pttl', KEYS[1]) < tonumber(ARGV[2]) then redis.call('pexpire', KEYS[1], ARGV[2]) end
return 1
"""
    )
    RELEASE = (
        _OWNER + "if owner(redis.call('get', KEYS[1])) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
    )

    def __init__(self, client: redis.Redis, *, messages_prefix: str | None = None) -> None:
        self.client = client
        self.messages_prefix = messages_prefix
        self.take_script = client.register_script(self.TAKE)
        self.extend_script = client.register_script(self.EXTEND)
        self.release_script = client.register_script(self.RELEASE)

    def where(self, message: Message) -> Where | None:
        """Where the broker keeps ``message`` as it is being sent or run, if it can be asked."""
        redis_message_id = message.options.get("redis_message_id")
        if self.messages_prefix is None or redis_message_id is None:
            return None
        return message.queue_name, redis_message_id

    def take(self, key: str, owner: str, *, ttl: int, expires_in: int, where: Where | None, how: str) -> int:
        """Take or retake the lock as ``how`` says, expiring in ``expires_in`` ms; TAKEN, HELD or QUEUED."""
        value = lock_value(owner, ttl, where)
        args = [owner, value, max(1, expires_in), how, self.messages_prefix or ""]
        return int(self.take_script(keys=[key], args=args))

    def extend(self, key: str, owner: str, *, ttl: int) -> bool:
        """The owner's lock lives at least ``ttl`` ms more; False if it is no longer the owner's."""
        return bool(self.extend_script(keys=[key], args=[owner, ttl]))

    def release(self, key: str, owner: str) -> bool:
        return bool(self.release_script(keys=[key], args=[owner]))

    def owner(self, key: str) -> str | None:
        value = self.client.get(key)
        return parse_value(value)[0] if value is not None else None

    def refresh_queued(self, prefix: str) -> int:
        """Extend by its ttl every lock under ``prefix`` whose message the broker holds; how many."""
        if self.messages_prefix is None:
            return 0
        extended = 0
        for key in self.client.scan_iter(match=f"{prefix}*", count=1000):
            value = self.client.get(key)
            owner, ttl, where = parse_value(value) if value is not None else ("", 0, None)
            if where is not None and ttl > 0:
                messages = f"{self.messages_prefix}{where[0]}{MESSAGES_SUFFIX}"
                extended += int(self.extend_script(keys=[key, messages], args=[owner, ttl, where[1]]))
        return extended


@dataclass
class _Lock:
    owner: str
    ttl: int
    where: Where | None
    expires: float


class MemoryLocks:
    """The same locks in one process's memory, for the StubBroker. ``queued(queue, id)`` says
    whether the broker still holds a message, as the ``.msgs`` hashes do on Redis."""

    def __init__(self, *, queued: Callable[[str, str], bool] | None = None) -> None:
        self.queued = queued
        self.mutex = threading.Lock()
        self.locks: dict[str, _Lock] = {}

    def where(self, message: Message) -> Where | None:
        return (message.queue_name, message.message_id) if self.queued is not None else None

    def take(self, key: str, owner: str, *, ttl: int, expires_in: int, where: Where | None, how: str) -> int:
        with self.mutex:
            lock = self._live(key)
            if lock is not None:
                if lock.owner != owner:
                    return HELD
                if how == FIRST and lock.where is not None and self.queued and self.queued(*lock.where):
                    return QUEUED
            elif how == RENEW:
                return HELD
            self.locks[key] = _Lock(owner, ttl, where, time.monotonic() + max(1, expires_in) / 1000)
            return TAKEN

    def extend(self, key: str, owner: str, *, ttl: int) -> bool:
        with self.mutex:
            return self._extend(key, owner, ttl)

    def release(self, key: str, owner: str) -> bool:
        with self.mutex:
            lock = self._live(key)
            if lock is None or lock.owner != owner:
                return False
            del self.locks[key]
            return True

    def owner(self, key: str) -> str | None:
        with self.mutex:
            lock = self._live(key)
            return lock.owner if lock is not None else None

    def refresh_queued(self, prefix: str) -> int:
        with self.mutex:
            held = [
                (key, lock)
                for key, lock in self.locks.items()
                if key.startswith(prefix) and lock.where is not None and self.queued and self.queued(*lock.where)
            ]
            return sum(self._extend(key, lock.owner, lock.ttl) for key, lock in held)

    def _extend(self, key: str, owner: str, ttl: int) -> bool:
        lock = self._live(key)
        if lock is None or lock.owner != owner:
            return False
        lock.expires = max(lock.expires, time.monotonic() + ttl / 1000)
        return True

    def _live(self, key: str) -> _Lock | None:
        lock = self.locks.get(key)
        return lock if lock is not None and lock.expires > time.monotonic() else None


def stub_queued(broker: StubBroker) -> Callable[[str, str], bool]:
    """Whether a queue of ``broker`` still holds the message with this id."""

    def queued(queue_name: str, message_id: str) -> bool:
        pending = broker.queues.get(queue_name)
        return pending is not None and any(
            Message.decode(data).message_id == message_id for data in list(pending.queue)
        )

    return queued
