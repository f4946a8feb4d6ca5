"""Flow limits in Redis: concurrency leases and sliding rate windows per key, each check one atomic script.

Every worker process on every host asks the same Redis, so a limit holds across all of them.

- A concurrency limit is a sorted set of leases (member: message id and worker, score: the
  lease's expiry). A lease is taken only while fewer than ``n`` unexpired leases exist, renewed
  by its process while the job runs, and dropped when it ends; a worker that dies stops renewing,
  so its leases are ignored once they expire (the broker's heartbeat timeout).
- A rate limit is a sorted set of start times: a job starts only while fewer than ``n`` starts
  lie within the last period (plus ``GUARD_MS``, so that a start recorded a moment after its
  admission still falls in a window that holds no more than ``n``).

On the Redis broker a job refused by concurrency limits alone is parked on its key and woken
when a slot frees (``workers.flow_parking``). Any other refused job (a rate limit's, or on
RabbitMQ) waits in a sorted set of deferred jobs (member: message id, score: when it comes
back), and is told how long to wait: until the window's oldest start leaves it (or the key's
earliest running job is expected to end, from the key's mean run time), behind the key's jobs
already deferred, spaced by what one slot serves (the period over ``n``, or the mean run time
over ``n``). So deferred jobs come back one slot's worth at a time instead of all at once, and
a key's backlog waits out of the queue, not in front of other keys' jobs. Times are Redis's own
clock (``TIME``), the same for every host.
"""

from __future__ import annotations

import json

import redis

from workers.flow_limit_options import CONCURRENCY, RATE, Limit
from workers.flow_parking import WAKE, ParkedJobs

#: Extra length of every rate window, in milliseconds.
GUARD_MS = 25
#: How long the keys of an idle limit outlive their last use, in milliseconds.
IDLE_TTL_MS = 86_400_000
#: The shortest deferral, in milliseconds.
MIN_DELAY_MS = 20
#: The mean run time assumed for a key that has none yet, in milliseconds.
FIRST_MEAN_MS = 100

# KEYS: index; then per limit its base key. ARGV: member (message id @ worker), lease ttl ms, limit count, idle ttl,
# guard, shortest delay, first mean, the broker's namespace ("": none), the doorbell's length, whether the job can be
# parked ("1" or "0"), then per limit: kind, n, period ms (rate) or 0, actor, key text, limit text.
# Returns {0} when admitted (every lease and start recorded); {delay ms, i} when refused by concurrency limits
# only and the job can be parked (on limit i, the first full one: nothing is recorded, ``flow_parking.PARK``
# does it); else {delay ms, 0}, the job recorded as deferred that long. An expired lease found wakes a parked job.
ACQUIRE = (
    WAKE
    + """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local member, ttl, count = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local idle = tonumber(ARGV[4])
local message_id = string.match(member, '^[^@]+')
local guard, min_delay, first_mean = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local ns, bell_length, can_park = ARGV[8], tonumber(ARGV[9]), ARGV[10] == '1'
local wait, park, rate_refused = 0, 0, false
redis.call('zremrangebyscore', KEYS[1], '-inf', now - idle)
for i = 1, count do
  local base = KEYS[i + 1]
  local at = 11 + (i - 1) * 6
  local kind, n, period = ARGV[at], tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])
  redis.call('zadd', KEYS[1], now, cjson.encode({kind, ARGV[at + 3], ARGV[at + 4], ARGV[at + 5], base, period}))
  redis.call('zrem', base .. ':deferred', message_id)
  redis.call('zremrangebyscore', base .. ':deferred', '-inf', now - 60000)
  local opens, spacing = nil, 0
  if kind == 'concurrency' then
    local leases = base .. ':leases'
    for _, gone in ipairs(redis.call('zrangebyscore', leases, '-inf', now)) do
      redis.call('zrem', leases, gone)
      redis.call('hdel', base .. ':starts', gone)
      if ns ~= '' then wake(base, ns, bell_length) end
    end
    if not redis.call('zscore', leases, member) and redis.call('zcard', leases) >= n then
      if park == 0 then park = i end
      local mean = tonumber(redis.call('hget', base .. ':stats', 'mean') or first_mean)
      local earliest = now
      for _, started in ipairs(redis.call('hvals', base .. ':starts')) do
        earliest = math.min(earliest, tonumber(started))
      end
      opens, spacing = math.max(now, earliest + mean), mean / n
    end
  else
    local window = base .. ':window'
    redis.call('zremrangebyscore', window, '-inf', now - period - guard)
    local held = redis.call('zcard', window)
    if held >= n then
      local oldest = redis.call('zrange', window, held - n, held - n, 'WITHSCORES')
      opens, spacing, rate_refused = tonumber(oldest[2]) + period + guard + 1, (period + guard) / n, true
    end
  end
  if opens then
    local last = redis.call('zrange', base .. ':deferred', -1, -1, 'WITHSCORES')
    local at = opens
    if last[2] then at = math.max(at, tonumber(last[2]) + spacing) end
    wait = math.max(wait, math.max(min_delay, math.floor(at - now)))
  end
end
if wait > 0 and can_park and not rate_refused then
  return {wait, park}
end
if wait > 0 then
  for i = 1, count do
    local base = KEYS[i + 1]
    redis.call('zadd', base .. ':deferred', now + wait, message_id)
    redis.call('hincrby', base .. ':stats', 'deferrals', 1)
    redis.call('pexpire', base .. ':deferred', idle)
    redis.call('pexpire', base .. ':stats', idle)
  end
  return {wait, 0}
end
for i = 1, count do
  local base = KEYS[i + 1]
  if ARGV[11 + (i - 1) * 6] == 'concurrency' then
    redis.call('zadd', base .. ':leases', now + ttl, member)
    redis.call('hset', base .. ':starts', member, now)
    redis.call('pexpire', base .. ':leases', idle)
    redis.call('pexpire', base .. ':starts', idle)
  else
    redis.call('zadd', base .. ':window', now, member)
    redis.call('pexpire', base .. ':window', idle)
  end
end
return {0}
"""
)

# KEYS: each concurrency limit's base key. ARGV: member, the broker's namespace ("": none), the doorbell's
# length. Drops the lease, folds the run's length into the key's mean run time, and wakes the key's first
# parked job (``workers.flow_parking``).
RELEASE = (
    WAKE
    + """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, base in ipairs(KEYS) do
  local started = redis.call('hget', base .. ':starts', ARGV[1])
  local held = redis.call('zrem', base .. ':leases', ARGV[1])
  redis.call('hdel', base .. ':starts', ARGV[1])
  if held == 1 and ARGV[2] ~= '' then wake(base, ARGV[2], tonumber(ARGV[3])) end
  if started then
    local mean = tonumber(redis.call('hget', base .. ':stats', 'mean') or '-1')
    local took = now - tonumber(started)
    if mean < 0 then mean = took else mean = 0.8 * mean + 0.2 * took end
    redis.call('hset', base .. ':stats', 'mean', math.floor(mean))
  end
end
return 0
"""
)

# KEYS: base keys; ARGV: member, ttl ms. Extends the member's lease of each key still holding it.
RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, base in ipairs(KEYS) do
  redis.call('zadd', base .. ':leases', 'XX', now + tonumber(ARGV[2]), ARGV[1])
end
return 0
"""


class FlowStore:
    """The limits' scripts on one Redis client, under ``prefix``; with the Redis broker's ``namespace`` (and
    its doorbell's length), jobs over a concurrency limit are parked and woken (``workers.flow_parking``)."""

    def __init__(self, client: redis.Redis, *, prefix: str, namespace: str = "", doorbell_length: int = 0) -> None:
        self.client = client
        self.prefix = prefix
        self.namespace, self.doorbell_length = namespace, doorbell_length
        self.parked = (
            ParkedJobs(client, prefix=prefix, namespace=namespace, doorbell_length=doorbell_length)
            if namespace
            else None
        )
        self.acquire_script = client.register_script(ACQUIRE)
        self.release_script = client.register_script(RELEASE)
        self.renew_script = client.register_script(RENEW)

    @property
    def index_key(self) -> str:
        return f"{self.prefix}:index"

    def base_key(self, limit: Limit, actor_name: str, key_text: str) -> str:
        """A constant key is shared by every actor naming it; a function's values are the actor's own."""
        scope = "shared" if isinstance(limit.key, str) else actor_name
        return f"{self.prefix}:{limit.kind}:{scope}:{key_text}"

    def acquire(
        self, member: str, limits: list[tuple[Limit, str, str]], *, ttl_ms: int, actor_name: str, can_park: bool = False
    ) -> tuple[int, int]:
        """Take every limit's lease or start for ``member``, or none: (0, 0), or how long to wait in ms and,
        if the job may be parked instead (``can_park`` and only concurrency limits refused it), the position
        (from 1) of the limit to park it on; a refused job that is not to be parked is recorded as deferred."""
        keys = [self.index_key]
        args = [member, ttl_ms, len(limits), IDLE_TTL_MS, GUARD_MS, MIN_DELAY_MS, FIRST_MEAN_MS]
        args += [self.namespace, self.doorbell_length, "1" if can_park and self.parked else "0"]
        for limit, key_text, base in limits:
            keys.append(base)
            args += [limit.kind, limit.n, limit.period_ms, actor_name, key_text, limit.text]
        reply = self.acquire_script(keys=keys, args=args)
        return int(reply[0]), int(reply[1]) if len(reply) > 1 else 0

    def release(self, member: str, bases: list[str]) -> None:
        """Give back ``member``'s leases of ``bases``; each wakes its key's first parked job."""
        if bases:
            self.release_script(keys=bases, args=[member, self.namespace, self.doorbell_length])

    def renew(self, held: dict[str, list[str]], *, ttl_ms: int) -> None:
        """Extend every lease in ``held`` (member -> base keys) by ``ttl_ms``, in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for member, bases in held.items():
            self.renew_script(keys=bases, args=[member, ttl_ms], client=pipe)
        pipe.execute()

    def overview(self, *, since_ms: int = IDLE_TTL_MS) -> list[dict]:
        """Every limit key used within ``since_ms``: actor, kind, key, limit, running, deferred (waiting now),
        starts within the last period (rate), and deferrals so far."""
        now_s, now_us = self.client.time()
        now = now_s * 1000 + now_us // 1000
        entries = [json.loads(raw) for raw in self.client.zrangebyscore(self.index_key, now - since_ms, "+inf")]
        pipe = self.client.pipeline(transaction=False)
        for _kind, _actor, _key, _text, base, period in entries:
            pipe.zcount(f"{base}:leases", now, "+inf")
            pipe.zcount(f"{base}:deferred", now - 60_000, "+inf")
            pipe.zcount(f"{base}:window", now - period, "+inf")
            pipe.hget(f"{base}:stats", "deferrals")
            pipe.zcard(f"{base}:parked")
        replies = pipe.execute()
        rows = []
        for number, (kind, actor, key, text, _base, _period) in enumerate(entries):
            running, deferred, in_window, deferrals, parked = replies[number * 5 : number * 5 + 5]
            deferred += parked
            rows.append(
                {
                    "actor": actor,
                    "kind": kind,
                    "key": key,
                    "limit": text,
                    "running": running if kind == CONCURRENCY else None,
                    "deferred": deferred,
                    "in_window": in_window if kind == RATE else None,
                    "deferrals": int(deferrals or 0),
                }
            )
        return sorted(rows, key=lambda row: (row["actor"], row["kind"], row["key"]))
