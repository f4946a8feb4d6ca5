"""The guarded Redis broker: its consumers dead-letter what they cannot decode, and take back what a lost
connection dropped."""

from __future__ import annotations

import threading
from uuid import uuid4

import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis, dq_name
from dramatiq.errors import ConnectionClosed

from workers.dramatiq_internals import lanes
from workers.dramatiq_internals.doorbell import Doorbells
from workers.dramatiq_internals.held_messages import HeldMessages
from workers.dramatiq_internals.keys import REDIS_ID_OPTION, acks_key, heartbeats_key, messages_key, queue_key
from workers.dramatiq_internals.lanes import LANE_OPTION, lane_prefix, rotation_key
from workers.dramatiq_internals.redis_consumer import CONNECTION_LOST, GuardedRedisConsumer
from workers.dramatiq_internals.worker import in_consumer_thread

#: Wake-ups a queue's doorbell keeps for consumers not yet waiting on it.
DOORBELL_LENGTH = 16

# Sends messages to one or more queues in one call, as Dramatiq's enqueue does (the body into the
# queue's hash, the id onto its list), but an id with a lane onto its lane (``lanes``), and rings
# each queue's doorbell once per message sent to it (as many as it keeps), so a send costs one
# round trip, doorbell included.
# KEYS: per queue, its message hash, its list, its rotation of lanes and its doorbell.
# ARGV: the doorbell's length, the number of queues n, the n queues' lane key prefixes, then per
# message the queue's position (from 1), the id, the body and the lane ("" for none).
SEND = """
local length, queues = tonumber(ARGV[1]), tonumber(ARGV[2])
local sent = {}
for i = 3 + queues, #ARGV, 4 do
    local queue, id, lane = tonumber(ARGV[i]), ARGV[i + 1], ARGV[i + 3]
    local base = 4 * (queue - 1)
    redis.call("hset", KEYS[base + 1], id, ARGV[i + 2])
    if lane == "" then
        redis.call("rpush", KEYS[base + 2], id)
    elseif redis.call("rpush", ARGV[2 + queue] .. lane, id) == 1 then
        redis.call("rpush", KEYS[base + 3], lane)
    end
    sent[queue] = (sent[queue] or 0) + 1
end
for queue = 1, queues do
    local doorbell = KEYS[4 * queue]
    for _ = 1, math.min(sent[queue] or 0, length) do redis.call("lpush", doorbell, 1) end
    redis.call("ltrim", doorbell, 0, length - 1)
    redis.call("pexpire", doorbell, 60000)
end
"""
#: The longest an idle consumer waits for its doorbell before it fetches anyway, in milliseconds
#: (the process's listener beats for it meanwhile: ``doorbell``).
IDLE_WAIT_MS = 120_000
#: The longest wait once the worker is stopping, in milliseconds: its consumers must notice soon.
STOPPING_WAIT_MS = 100

#: Seconds a Redis command may wait for its reply, or for a connection (unless the URL says otherwise).
CONNECTION_TIMEOUTS = {"socket_timeout": 30, "socket_connect_timeout": 10}


class ConsumerConnectionLost(ConnectionClosed, redis.ConnectionError):
    """Redis went away under a consumer thread: a connection error to its loop and to redis-py callers alike."""


class GuardedRedisBroker(HeldMessages, RedisBroker):
    """Dramatiq's RedisBroker whose consumers dead-letter what they cannot decode instead of stalling,
    and take back what a consumer that lost its connection was holding."""

    #: Wake-ups a queue's doorbell keeps (the flow limits' parked jobs ring it too).
    doorbell_length = DOORBELL_LENGTH

    def __init__(self, *, url: str | None = None, **options) -> None:
        if url and options.get("client") is None:
            # redis-py waits for ever by default: a connection left half-open by a network fault
            # or a Redis that died mid-reply would hang the thread on it (a consumer, the
            # housekeeping) for good. With timeouts it fails, and its loop connects afresh.
            pool = redis.ConnectionPool.from_url(url, **CONNECTION_TIMEOUTS)
            options["client"] = redis.Redis(connection_pool=pool)
        super().__init__(**options)
        self.send_script = self.client.register_script(SEND)
        self.fetch_script = self.client.register_script(lanes.FETCH)
        self.stopping = False
        self.doorbells: Doorbells | None = None
        self.doorbells_mutex = threading.Lock()
        #: Per queue: the Redis ids handed to the worker and not yet acknowledged, shared by
        #: every consumer the worker makes of that queue in turn.
        self.outstanding: dict[str, set[str]] = {}

    @property
    def consumer_class(self):
        return GuardedRedisConsumer

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> GuardedRedisConsumer:
        """A consumer of ``queue_name``; one made after an earlier one failed first takes back its orphans.

        Dramatiq's consumer thread makes a new consumer after a connection error, dropping what
        the old one held in memory: the messages it had prefetched and, for a delay queue, every
        message waiting for its eta. They stay in this worker's ack set, and a live worker's ack
        set is never recovered by anyone, so they would never run.
        """
        restarted = queue_name in self.outstanding
        outstanding = self.outstanding.setdefault(queue_name, set())
        return self.consumer_class(self, queue_name, prefetch, timeout, outstanding=outstanding, restarted=restarted)

    def enqueue(self, message, *, delay=None):
        """Send ``message``; in a consumer thread, a lost connection is the thread's connection error.

        A consumer thread sends the delayed messages that fall due. Dramatiq's thread restarts
        its consumer on a broker connection error, but takes redis-py's own for a bug: it then
        requeues its delayed messages over the same dead connection, the error escapes, and the
        thread dies, leaving those messages in a live worker's ack set for ever.
        """
        try:
            return self._send(message, delay=delay)
        except CONNECTION_LOST as error:
            if in_consumer_thread() and not isinstance(error, ConnectionClosed):
                raise ConsumerConnectionLost(str(error)) from None
            raise

    def _send(self, message, *, delay=None):
        # Dramatiq's RedisBroker.enqueue, but a message with a lane (and no delay) goes on its lane.
        queue_name = message.queue_name
        message = message.copy(options={REDIS_ID_OPTION: str(uuid4())})
        if delay is not None:
            queue_name = dq_name(queue_name)
            message = message.copy(queue_name=queue_name, options={"eta": current_millis() + delay})
        self.emit_before("enqueue", message, delay)
        redis_id = message.options[REDIS_ID_OPTION]
        if self._should_do_maintenance("enqueue"):
            # Dramatiq's enqueue also gives back dead workers' messages on a few sends in a million.
            self.do_enqueue(queue_name, redis_id, message.encode())
            self.ring(queue_name)
        else:
            lane = message.options.get(LANE_OPTION) if delay is None else None
            self.send_messages({queue_name: [(redis_id, message.encode(), lane or "")]})
        self.emit_after("enqueue", message, delay)
        return message

    def send_messages(self, batch: dict[str, list[tuple[str, bytes, str]]]) -> None:
        """Send ``(redis id, body, lane or "")`` per queue, in one script call (``SEND``): all or none.

        A message with a lane waits on it; every queue's doorbell is rung once per message sent.
        """
        keys, prefixes, args = [], [], []
        for position, (queue_name, entries) in enumerate(batch.items(), start=1):
            keys += [
                messages_key(self, queue_name),
                queue_key(self, queue_name),
                rotation_key(self.namespace, queue_name),
                self.doorbell_key(queue_name),
            ]
            prefixes.append(lane_prefix(self.namespace, queue_name))
            for redis_id, body, lane in entries:
                args += [position, redis_id, body, lane]
        self.send_script(keys=keys, args=[DOORBELL_LENGTH, len(batch), *prefixes, *args])

    def fetch(self, queue_name: str, count: int) -> list[bytes | None]:
        """Up to ``count`` bodies of ``queue_name``, taken in turn from its list and its lanes (``lanes.FETCH``)."""
        keys = [
            queue_key(self, queue_name),
            messages_key(self, queue_name),
            acks_key(self, self.broker_id, queue_name),
            rotation_key(self.namespace, queue_name),
            heartbeats_key(self),
        ]
        args = [min(count, self._max_unpack_size()), lane_prefix(self.namespace, queue_name), current_millis()]
        return self.fetch_script(keys=keys, args=[*args, self.broker_id])

    # A consumer with nothing to fetch waits for its queue's doorbell (``doorbell.Doorbells``: one
    # BLPOP per process for all its idle consumers) rather than sleeping, and each send rings it, so
    # an idle worker starts a job as soon as it is sent (or falls due).
    def doorbell_key(self, queue_name: str) -> str:
        return f"{self.namespace}:__doorbell__.{queue_name}"

    def ring(self, queue_name: str, times: int = 1) -> None:
        """Wake ``times`` consumers waiting for ``queue_name``; a lost ring only costs a consumer its backoff."""
        key = self.doorbell_key(queue_name)
        pipe = self.client.pipeline(transaction=False)
        pipe.lpush(key, *[1] * min(times, DOORBELL_LENGTH))
        pipe.ltrim(key, 0, DOORBELL_LENGTH - 1)
        pipe.pexpire(key, 60_000)
        try:
            pipe.execute()
        except redis.RedisError:
            pass

    @property
    def idle_wait_ms(self) -> int:
        """The longest an idle consumer of this broker waits before it fetches again, in milliseconds."""
        return STOPPING_WAIT_MS if self.stopping else IDLE_WAIT_MS

    def wait_for_ring(self, queue_name: str, timeout_ms: int) -> None:
        """Wait until ``queue_name`` is rung or ``timeout_ms`` milliseconds have passed."""
        with self.doorbells_mutex:
            if self.doorbells is None:
                self.doorbells = Doorbells(self)
        self.doorbells.wait(queue_name, min(timeout_ms, self.idle_wait_ms))

    def emit_before(self, signal: str, *args, **kwargs) -> None:
        # A stopping worker joins its consumer threads: those waiting for a doorbell are woken, and
        # from now on wait only briefly.
        if signal == "worker_shutdown":
            self.stopping = True
            if self.doorbells is not None:
                self.doorbells.stop()
        super().emit_before(signal, *args, **kwargs)
