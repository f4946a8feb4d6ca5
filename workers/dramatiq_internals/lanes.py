"""Fair lanes on the Redis broker: a queue's jobs of different keys are served round-robin.

Dramatiq's Redis queue is one list, first in first out: 10,000 jobs of one customer sent a
moment before ten of another's hold those ten back until the 10,000 are through. A message sent
with the option ``flow_lane`` (set by the flow limits, ``workers.middleware.limits``, from the
job's limit key) is not pushed on the queue's list but on its lane's, ``<ns>:<queue>.lane.<lane>``,
and the lane's name joins the queue's rotation ``<ns>:<queue>.lanes`` if it was empty (the
broker's send script, ``redis_broker.SEND``, for one send and for a bulk alike). Its body
goes into the queue's message hash as usual, so acknowledging, dead-lettering and taking back a
dead worker's messages (all by id) work unchanged.

A consumer fetches with ``FETCH`` instead of Dramatiq's ``fetch`` command: each id it takes
comes, in turn, from the queue's own list and from the next lane of the rotation (a lane goes to
the back of the rotation after giving one id), so a lane with 10,000 ids gives one for each one
of a lane with ten, and jobs sent without a lane keep half the queue. Everything else of the
fetch is Dramatiq's: the worker's heartbeat, the ids added to its ack set, the bodies returned.
Delayed messages wait in the delay queue as before, and take their lane when they fall due.
"""

from __future__ import annotations

#: The message option naming a message's lane.
LANE_OPTION = "flow_lane"

# KEYS: the queue, its message hash, the worker's ack set of it, the queue's rotation, heartbeats.
# ARGV: how many to fetch, the lanes' key prefix, now (ms), the worker's id.
# Returns the bodies of the ids taken (as Dramatiq's fetch does).
FETCH = """
redis.call("zadd", KEYS[5], ARGV[3], ARGV[4])
local function from_lanes()
    while true do
        local lane = redis.call("lpop", KEYS[4])
        if not lane then return false end
        local id = redis.call("lpop", ARGV[2] .. lane)
        if redis.call("llen", ARGV[2] .. lane) > 0 then redis.call("rpush", KEYS[4], lane) end
        if id then return id end
    end
end
if redis.call("exists", KEYS[4]) == 0 then
    -- No lane waits: the queue's own list gives them all, taken at once as Dramatiq's fetch does.
    local ids = redis.call("lrange", KEYS[1], 0, tonumber(ARGV[1]) - 1)
    if #ids == 0 then return {} end
    redis.call("ltrim", KEYS[1], #ids, -1)
    redis.call("sadd", KEYS[3], unpack(ids))
    return redis.call("hmget", KEYS[2], unpack(ids))
end
local ids = {}
for i = 1, tonumber(ARGV[1]) do
    local id
    -- Turns alternate between the lanes and the queue's own list, carried over from fetch to fetch.
    if redis.call("incr", KEYS[4] .. ".turn") % 2 == 1 then
        id = from_lanes() or redis.call("lpop", KEYS[1])
    else
        id = redis.call("lpop", KEYS[1]) or from_lanes()
    end
    if not id then break end
    ids[#ids + 1] = id
    redis.call("sadd", KEYS[3], id)
end
if #ids == 0 then return {} end
return redis.call("hmget", KEYS[2], unpack(ids))
"""


def rotation_key(namespace: str, queue_name: str) -> str:
    return f"{namespace}:{queue_name}.lanes"


def lane_prefix(namespace: str, queue_name: str) -> str:
    return f"{namespace}:{queue_name}.lane."


# KEYS: the queue's rotation; ARGV: the lanes' key prefix. Returns how many ids wait in its lanes.
WAITING = """
local total = 0
for _, lane in ipairs(redis.call("lrange", KEYS[1], 0, -1)) do
    total = total + redis.call("llen", ARGV[1] .. lane)
end
return total
"""


def waiting_in_lanes(client, namespace: str, queue_name: str) -> int:
    """How many jobs of ``queue_name`` wait in its lanes (not in its own list), for the queue's counts."""
    script = client.register_script(WAITING)
    return int(script(keys=[rotation_key(namespace, queue_name)], args=[lane_prefix(namespace, queue_name)]))
