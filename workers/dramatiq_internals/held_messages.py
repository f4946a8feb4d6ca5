"""What this worker holds in its Redis ack sets, taken back: each step one Lua script over the ack set.

Dramatiq's Redis broker keeps every message a worker has fetched and not acknowledged in that
worker's ack set of the queue. A consumer that lost its connection, or puts back what its
worker took of a paused queue, must move ids from that set back to the head of the queue; and
a body that does not decode carries no readable id, so the id is found by matching the body.
"""

from __future__ import annotations

from workers.dramatiq_internals.keys import acks_key, messages_key, queue_key

# KEYS: the consumer's ack set, the queue's message hash; ARGV: a fetched body.
# Returns the id under which this consumer fetched that body, or nil.
FIND_FETCHED = """
for _, id in ipairs(redis.call("smembers", KEYS[1])) do
    if redis.call("hget", KEYS[2], id) == ARGV[1] then return id end
end
return false
"""


# KEYS: the consumer's ack set, the queue, the queue's message hash; ARGV: the ids to keep.
# Every other id of the ack set goes back to the head of the queue. Returns how many went back.
REQUEUE_ORPHANS = """
local keep = {}
for _, id in ipairs(ARGV) do keep[id] = true end
local moved = 0
for _, id in ipairs(redis.call("smembers", KEYS[1])) do
    if not keep[id] then
        redis.call("srem", KEYS[1], id)
        if redis.call("hexists", KEYS[3], id) == 1 then
            redis.call("lpush", KEYS[2], id)
            moved = moved + 1
        end
    end
end
return moved
"""


# KEYS: the consumer's ack set, the queue, the queue's message hash; ARGV: ids, first in line first.
# Each id still in the ack set goes back to the head of the queue, in ARGV's order. Returns how many.
REQUEUE_HELD = """
local moved = 0
for i = #ARGV, 1, -1 do
    if redis.call("srem", KEYS[1], ARGV[i]) == 1 and redis.call("hexists", KEYS[3], ARGV[i]) == 1 then
        redis.call("lpush", KEYS[2], ARGV[i])
        moved = moved + 1
    end
end
return moved
"""


class HeldMessages:
    """A Redis broker's steps over this worker's ack sets; mixed in before Dramatiq's ``RedisBroker``."""

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.find_fetched_script = self.client.register_script(FIND_FETCHED)
        self.requeue_orphans_script = self.client.register_script(REQUEUE_ORPHANS)
        self.requeue_held_script = self.client.register_script(REQUEUE_HELD)

    def requeue_orphans(self, queue_name: str, keep: set[str]) -> int:
        """Put back at the head of the queue every id of this worker's ack set of ``queue_name`` not in ``keep``."""
        keys = [
            acks_key(self, self.broker_id, queue_name),
            queue_key(self, queue_name),
            messages_key(self, queue_name),
        ]
        return int(self.requeue_orphans_script(keys=keys, args=sorted(keep)))

    def requeue_held(self, queue_name: str, redis_ids: list[str]) -> int:
        """Put these ids of this worker's ack set of ``queue_name`` back at the head of the queue, in order."""
        keys = [acks_key(self, self.broker_id, queue_name), queue_key(self, queue_name), messages_key(self, queue_name)]
        return int(self.requeue_held_script(keys=keys, args=redis_ids)) if redis_ids else 0

    def find_fetched(self, queue_name: str, data: bytes) -> str | None:
        """The Redis id under which this broker's consumer of ``queue_name`` fetched ``data``."""
        keys = [acks_key(self, self.broker_id, queue_name), messages_key(self, queue_name)]
        found = self.find_fetched_script(keys=keys, args=[data])
        return found.decode() if isinstance(found, bytes) else found
