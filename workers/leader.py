"""A leader lock in Redis: one holder at a time, kept by renewing it well within its TTL.

The lock is one key whose value is the holder's token. Taking and renewing are one script, so
"free" and "mine" are decided atomically, and a holder whose key survived a Redis restart
(append-only persistence keeps keys with their expiry) simply goes on holding it. A holder
that dies stops renewing; the key expires after its TTL and the next poll of another takes it.
"""

from __future__ import annotations

import time

import redis


class LeaderLock:
    """Take, renew and release a Redis lock under a token.

    Parameters:
      client(redis.Redis): The Redis holding the key.
      key(str): The lock's key.
      token(str): This holder's identity, unique per process.
      ttl(float): How long the lock outlives its last renewal, in seconds.
    """

    # Take the lock if nobody holds it, renew it if this token does, else leave it alone.
    HOLD = """
    if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
    if redis.call('get', KEYS[1]) == ARGV[1] then
      redis.call('pexpire', KEYS[1], ARGV[2])
      return 1
    end
    return 0
    """
    # Delete only our own lock: one that expired and was taken by another holder stays.
    RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"

    def __init__(self, *, client: redis.Redis, key: str, token: str, ttl: float) -> None:
        self.client = client
        self.key = key
        self.token = token
        self.ttl = ttl
        self.hold_script = client.register_script(self.HOLD)
        self.release_script = client.register_script(self.RELEASE)
        self.valid_until = 0.0

    def hold(self) -> bool:
        """Take or renew the lock; True while this token holds it. Raises ``redis.RedisError``."""
        # The lease counts from before the request: the key may have been set at any moment of it.
        asked_at = time.monotonic()
        self.valid_until = 0.0
        held = bool(self.hold_script(keys=[self.key], args=[self.token, int(self.ttl * 1000)]))
        if held:
            self.valid_until = asked_at + self.ttl
        return held

    def holds(self) -> bool:
        """Whether the last renewal still covers this moment (no Redis call)."""
        return time.monotonic() < self.valid_until

    def holder(self) -> str | None:
        """The token of whoever holds the lock now, if anyone."""
        value = self.client.get(self.key)
        return value.decode() if value is not None else None

    def release(self) -> bool:
        """Give the lock up if this token holds it."""
        self.valid_until = 0.0
        return bool(self.release_script(keys=[self.key], args=[self.token]))
