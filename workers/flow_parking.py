"""Jobs over a concurrency limit parked in Redis, and woken the moment one of their key's slots frees.

A job refused only by concurrency limits does not wait out an estimated delay: it is parked on
the first full key (``<base>:parked``, a sorted set of ``"<redis id> <queue> <lane>"`` in the
order they came, and ``<base>:bodies``, their messages) by one script that also acknowledges
the copy the worker held, so a worker dying at any point neither loses the job nor runs it
twice. While parked it holds no worker thread and no place in any queue.

Whatever frees a slot wakes the key's first parked job in the same script: a lease given back
(``RELEASE``), a lease found expired (``ACQUIRE``, ``SWEEP``). Waking sends the job the way the
Redis broker's send does (``workers.dramatiq_internals.redis_broker.SEND``): its body into the
queue's message hash, its id to the head of its lane (or of the queue's list) and one ring of the
queue's doorbell, so an idle worker starts it at once. The woken job takes its lease as any job
does, and is parked again if another took the slot first.

Only leases that expire (their worker died) free a slot without a release: the process that
parked a job sweeps the key when the earliest lease would expire (``SWEEP``), and housekeeping
sweeps every key with parked jobs whose time has come (``<prefix>:parked``), in case that
process is gone too. Neither polls: each looks once per lease lifetime at most.
"""

from __future__ import annotations

import threading
import time
from uuid import uuid4

import redis

from workers.dramatiq_internals.keys import REDIS_ID_OPTION, acks_key, messages_key
from workers.dramatiq_internals.lanes import LANE_OPTION

# Lua: wake the first parked job of ``base`` (returns 1, or 0 if none is parked). The key names
# are the Redis broker's: ``keys.queue_key``, ``keys.messages_key``, ``lanes.lane_prefix``,
# ``lanes.rotation_key`` and ``GuardedRedisBroker.doorbell_key``, under the namespace ``ns``.
WAKE = """
local function wake(base, ns, bell_length)
  while true do
    local first = redis.call('zpopmin', base .. ':parked')
    if not first[1] then return 0 end
    local id, queue, lane = string.match(first[1], '^(%S+) (%S+) ?(.*)$')
    local body = redis.call('hget', base .. ':bodies', id)
    redis.call('hdel', base .. ':bodies', id)
    if body then
      local queue_key = ns .. ':' .. queue
      redis.call('hset', queue_key .. '.msgs', id, body)
      if lane == '' then
        redis.call('lpush', queue_key, id)
      elseif redis.call('lpush', queue_key .. '.lane.' .. lane, id) == 1 then
        redis.call('rpush', queue_key .. '.lanes', lane)
      end
      local bell = ns .. ':__doorbell__.' .. queue
      redis.call('lpush', bell, 1)
      redis.call('ltrim', bell, 0, bell_length - 1)
      redis.call('pexpire', bell, 60000)
      return 1
    end
  end
end
"""

# Lua: drop the expired leases of ``base`` (each one's start time too); returns how many.
EXPIRE = """
local function expire_leases(base, now)
  local leases = base .. ':leases'
  local gone = redis.call('zrangebyscore', leases, '-inf', now)
  for _, member in ipairs(gone) do
    redis.call('zrem', leases, member)
    redis.call('hdel', base .. ':starts', member)
  end
  return #gone
end
local function lease_due(base, now)
  local first = redis.call('zrange', base .. ':leases', 0, 0, 'WITHSCORES')
  if first[2] then return math.max(1, tonumber(first[2]) - now + 1) end
  return 1
end
"""

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: the full key's base, the held copy's ack set, its queue's message hash, the parked keys' index.
# ARGV: the key's limit n, the entry ("<redis id> <queue> <lane>"), the body, the held copy's
# redis id, how long idle keys live (ms). Returns -1 if a slot is free after all (take it),
# else in how many ms the key's earliest lease expires (when to sweep it).
PARK = (
    EXPIRE
    + _NOW
    + """
local base, n = KEYS[1], tonumber(ARGV[1])
expire_leases(base, now)
if redis.call('zcard', base .. ':leases') < n then return -1 end
local id = string.match(ARGV[2], '^(%S+)')
local idle = tonumber(ARGV[5])
redis.call('zadd', base .. ':parked', now, ARGV[2])
redis.call('hset', base .. ':bodies', id, ARGV[3])
redis.call('hincrby', base .. ':stats', 'deferrals', 1)
redis.call('hset', base .. ':stats', 'n', n)
for _, key in ipairs({base .. ':parked', base .. ':bodies', base .. ':stats'}) do redis.call('pexpire', key, idle) end
redis.call('srem', KEYS[2], ARGV[4])
redis.call('hdel', KEYS[3], ARGV[4])
local due = lease_due(base, now)
redis.call('zadd', KEYS[4], now + due, base)
return due
"""
)

# KEYS: the base of each key to sweep. ARGV: the broker's namespace, the doorbell's length.
# Drops expired leases and wakes as many parked jobs as there are free slots. Returns, per key,
# the jobs woken, the jobs still parked and in how many ms its earliest lease expires.
SWEEP = (
    WAKE
    + EXPIRE
    + _NOW
    + """
local found = {}
for _, base in ipairs(KEYS) do
  expire_leases(base, now)
  local n = tonumber(redis.call('hget', base .. ':stats', 'n') or '1')
  local free, woken = n - redis.call('zcard', base .. ':leases'), 0
  while free > 0 and wake(base, ARGV[1], tonumber(ARGV[2])) == 1 do
    free, woken = free - 1, woken + 1
  end
  found[#found + 1] = {woken, redis.call('zcard', base .. ':parked'), lease_due(base, now)}
end
return found
"""
)

# KEYS: the parked keys' index. ARGV: the broker's namespace, the doorbell's length, the most keys.
# Sweeps (as SWEEP) every key whose earliest lease should have expired; returns the jobs woken.
SWEEP_DUE = (
    WAKE
    + EXPIRE
    + _NOW
    + """
local woken = 0
for _, base in ipairs(redis.call('zrangebyscore', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))) do
  expire_leases(base, now)
  local n = tonumber(redis.call('hget', base .. ':stats', 'n') or '1')
  local free = n - redis.call('zcard', base .. ':leases')
  while free > 0 and wake(base, ARGV[1], tonumber(ARGV[2])) == 1 do
    free, woken = free - 1, woken + 1
  end
  if redis.call('zcard', base .. ':parked') == 0 then
    redis.call('zrem', KEYS[1], base)
  else
    redis.call('zadd', KEYS[1], now + lease_due(base, now), base)
  end
end
return woken
"""
)


class ParkedJobs:
    """The parking scripts on one Redis client: the flow limits' keys under ``prefix``, the broker's under
    ``namespace``."""

    def __init__(self, client: redis.Redis, *, prefix: str, namespace: str, doorbell_length: int) -> None:
        self.client = client
        self.namespace = namespace
        self.doorbell_length = doorbell_length
        self.index_key = f"{prefix}:parked"
        self.park_script = client.register_script(PARK)
        self.sweep_script = client.register_script(SWEEP)
        self.sweep_due_script = client.register_script(SWEEP_DUE)

    def park(
        self, base: str, n: int, *, entry: str, body: bytes, held: tuple[str, str, str], idle_ms: int
    ) -> int | None:
        """Park a job on the full key ``base``, acknowledging the copy ``held`` (ack set, message hash, redis id).

        Returns in how many ms the key's earliest lease expires, or None if a slot was free after all.
        """
        ack_set, messages, redis_id = held
        keys = [base, ack_set, messages, self.index_key]
        due = int(self.park_script(keys=keys, args=[n, entry, body, redis_id, idle_ms]))
        return None if due < 0 else due

    def sweep(self, bases: list[str]) -> dict[str, tuple[int, int, int]]:
        """Wake the parked jobs of ``bases`` that their free slots let run: per base (woken, still parked, due ms)."""
        found = self.sweep_script(keys=bases, args=[self.namespace, self.doorbell_length])
        return {base: tuple(int(value) for value in row) for base, row in zip(bases, found, strict=True)}

    def sweep_due(self, *, most: int = 1000) -> int:
        """Sweep every key whose earliest lease should have expired by now; returns how many jobs woke."""
        if not self.client.zrangebyscore(self.index_key, "-inf", "+inf", start=0, num=1):
            return 0  # nothing parked anywhere: one command
        return int(self.sweep_due_script(keys=[self.index_key], args=[self.namespace, self.doorbell_length, most]))


def park_message(broker, parked: ParkedJobs, message, *, n: int, base: str, options: dict, idle_ms: int) -> int | None:
    """Park ``message``, which a worker thread of ``broker`` holds, with ``options`` added, on the full key
    ``base``; the held copy is acknowledged with it. Returns in how many ms to sweep the key, or None if
    a slot was free after all (the message is then left as it was)."""
    redis_id = str(uuid4())
    body = message.copy(options={**options, REDIS_ID_OPTION: redis_id}).encode()
    queue_name = message.queue_name
    entry = f"{redis_id} {queue_name} {message.options.get(LANE_OPTION) or ''}"
    held = (
        acks_key(broker, broker.broker_id, queue_name),
        messages_key(broker, queue_name),
        message.options[REDIS_ID_OPTION],
    )
    return parked.park(base, n, entry=entry, body=body, held=held, idle_ms=idle_ms)


class Sweeps:
    """The keys one process parked jobs on, each swept when its earliest lease would have expired."""

    def __init__(self) -> None:
        self.due: dict[str, float] = {}  # base -> when (monotonic) to sweep it
        self.mutex = threading.Lock()

    def note(self, base: str, due_ms: int) -> None:
        with self.mutex:
            self.due[base] = min(self.due.get(base, float("inf")), time.monotonic() + due_ms / 1000)

    def run(self, parked: ParkedJobs | None, logger) -> None:
        """Sweep the keys whose time has come; a key with jobs still parked is swept again when its next lease
        would expire."""
        with self.mutex:
            bases = [base for base, at in self.due.items() if at <= time.monotonic()]
        if not bases or parked is None:
            return
        try:
            found = parked.sweep(bases)
        except Exception:  # noqa: BLE001 - Redis away for a moment: the next round tries again
            logger.warning("Could not sweep %d key(s) with parked jobs.", len(bases), exc_info=True)
            return
        with self.mutex:
            for base, (_woken, left, due_ms) in found.items():
                if left:
                    self.due[base] = time.monotonic() + due_ms / 1000
                else:
                    self.due.pop(base, None)


def parked_jobs_wake(broker) -> int:
    """Wake the jobs parked on keys whose leases should have expired by now, for housekeeping."""
    from workers.middleware.limits import flow_control  # the middleware parks through this module

    middleware = flow_control(broker)
    store = middleware.store(broker) if middleware is not None else None
    return store.parked.sweep_due() if store is not None and store.parked is not None else 0
