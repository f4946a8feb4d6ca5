"""Flow limits in Redis: concurrency leases and sliding rate windows per key, each check one atomic script.

Every worker process on every host asks the same Redis, so a limit holds across all of them.

- A concurrency limit is a sorted set of leases (member: message id and worker, score: the
  lease's expiry). A lease is taken only while fewer than ``n`` unexpired leases exist, renewed
  by its process while the job runs, and dropped when it ends; a worker that dies stops renewing,
  so its leases are ignored once they expire (the broker's heartbeat timeout).
- A rate limit is a sorted set of start times: a job starts only while fewer than ``n`` starts
  lie within the last period (plus ``GUARD_MS``, so that a start recorded a moment after its
  admission still falls in a window that holds no more than ``n``).

A job refused by either waits in a sorted set of deferred jobs (member: message id, score: when
it comes back), and is told how long to wait: until the earliest running job of the key is
expected to end (from the key's mean run time) or the window's oldest start leaves it, and
behind the key's jobs already deferred, spaced by what one slot serves (the mean run time over
``n``, or the period over ``n``). So deferred jobs come back one slot's worth at a time instead
of all at once, and a key's backlog waits out of the queue, not in front of other keys' jobs.
Times are Redis's own clock (``TIME``), the same for every host.
"""

from __future__ import annotations

import json

import redis

from workers.flow_limit_options import CONCURRENCY, RATE, Limit

#: Extra length of every rate window, in milliseconds.
GUARD_MS = 25
#: How long the keys of an idle limit outlive their last use, in milliseconds.
IDLE_TTL_MS = 86_400_000
#: The shortest deferral, in milliseconds.
MIN_DELAY_MS = 20
#: The mean run time assumed for a key that has none yet, in milliseconds.
FIRST_MEAN_MS = 100

# KEYS: index; then per limit its base key. ARGV: member (message id @ worker), lease ttl ms, limit count, then per
# limit: kind, n, period ms (rate) or 0, actor, key text, limit text.
# Returns {0} when admitted (every lease and start recorded), or {delay ms} when refused.
ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local member, ttl, count = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local idle = tonumber(ARGV[4])
local message_id = string.match(member, '^[^@]+')
local guard, min_delay, first_mean = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local wait = 0
redis.call('zremrangebyscore', KEYS[1], '-inf', now - idle)
for i = 1, count do
  local base = KEYS[i + 1]
  local kind, n, period = ARGV[8 + (i - 1) * 6], tonumber(ARGV[9 + (i - 1) * 6]), tonumber(ARGV[10 + (i - 1) * 6])
  redis.call('zadd', KEYS[1], now, cjson.encode({kind, ARGV[11 + (i - 1) * 6], ARGV[12 + (i - 1) * 6],
    ARGV[13 + (i - 1) * 6], base, period}))
  redis.call('zrem', base .. ':deferred', message_id)
  redis.call('zremrangebyscore', base .. ':deferred', '-inf', now - 60000)
  local opens, spacing = nil, 0
  if kind == 'concurrency' then
    local leases = base .. ':leases'
    for _, gone in ipairs(redis.call('zrangebyscore', leases, '-inf', now)) do
      redis.call('zrem', leases, gone)
      redis.call('hdel', base .. ':starts', gone)
    end
    if not redis.call('zscore', leases, member) and redis.call('zcard', leases) >= n then
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
      opens, spacing = tonumber(oldest[2]) + period + guard + 1, (period + guard) / n
    end
  end
  if opens then
    local last = redis.call('zrange', base .. ':deferred', -1, -1, 'WITHSCORES')
    local at = opens
    if last[2] then at = math.max(at, tonumber(last[2]) + spacing) end
    wait = math.max(wait, math.max(min_delay, math.floor(at - now)))
  end
end
if wait > 0 then
  for i = 1, count do
    local base = KEYS[i + 1]
    redis.call('zadd', base .. ':deferred', now + wait, message_id)
    redis.call('hincrby', base .. ':stats', 'deferrals', 1)
    redis.call('pexpire', base .. ':deferred', idle)
    redis.call('pexpire', base .. ':stats', idle)
  end
  return {wait}
end
for i = 1, count do
  local base = KEYS[i + 1]
  if ARGV[8 + (i - 1) * 6] == 'concurrency' then
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

# KEYS: each concurrency limit's base key. ARGV: member. Drops the lease and folds the run's
# length into the key's mean run time.
RELEASE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, base in ipairs(KEYS) do
  local started = redis.call('hget', base .. ':starts', ARGV[1])
  redis.call('zrem', base .. ':leases', ARGV[1])
  redis.call('hdel', base .. ':starts', ARGV[1])
  if started then
    local mean = tonumber(redis.call('hget', base .. ':stats', 'mean') or '-1')
    local took = now - tonumber(started)
    if mean < 0 then mean = took else mean = 0.8 * mean + 0.2 * took end
    redis.call('hset', base .. ':stats', 'mean', math.floor(mean))
  end
end
return 0
"""

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
    """The limits' scripts on one Redis client, under ``prefix``."""

    def __init__(self, client: redis.Redis, *, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
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

    def acquire(self, member: str, limits: list[tuple[Limit, str, str]], *, ttl_ms: int, actor_name: str) -> int:
        """Take every limit's lease or start for ``member``, or none: 0, or how long to wait, in ms."""
        keys, args = [self.index_key], [member, ttl_ms, len(limits), IDLE_TTL_MS, GUARD_MS, MIN_DELAY_MS, FIRST_MEAN_MS]
        for limit, key_text, base in limits:
            keys.append(base)
            args += [limit.kind, limit.n, limit.period_ms, actor_name, key_text, limit.text]
        return int(self.acquire_script(keys=keys, args=args)[0])

    def release(self, member: str, bases: list[str]) -> None:
        if bases:
            self.release_script(keys=bases, args=[member])

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
        replies = pipe.execute()
        rows = []
        for number, (kind, actor, key, text, _base, _period) in enumerate(entries):
            running, deferred, in_window, deferrals = replies[number * 4 : number * 4 + 4]
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
