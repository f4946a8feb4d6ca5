"""The brokers' consumers at the boundary: a message that cannot run becomes a dead letter, never a stalled worker.

It leans on the consumers' fetch loops (``_RedisConsumer.__next__``, ``_RabbitmqConsumer.__next__``)
and their caches and tags, the Redis broker's ``do_nack`` dispatch, ``MessageProxy``'s stuffed
exception, and the worker's ``ConsumerThread``: see the package's docstring.

Dramatiq's Redis consumer decodes a fetched message inside its iterator: a body that does not
decode raises out of it, the consumer thread restarts, and the message (with the rest of the
prefetched batch) stays in the worker's ack set, unacknowledged, for as long as the worker
lives. Here each fetched body is decoded on its own (size, signature and shape are checked by
``workers.signing``); one that does not decode is recorded as a ``DeadLetter`` with its reason
and the start of its body, and moved to the broker's dead-letter queue, and the consumer goes
on to the next. A body that does not decode carries no readable Redis message id, so the id is
found by matching the body against this consumer's own ack set (at most ``prefetch`` ids).

A consumer of a paused queue (``workers.pauses``) fetches nothing, and puts back what its
worker took of that queue and has not started; a delay queue is never paused, so delayed
messages still move to their queue when due and wait there.
"""

from __future__ import annotations

import hashlib
import threading
import time

import pika
import redis
from django.db import connections
from dramatiq import Message
from dramatiq.broker import MessageProxy
from dramatiq.brokers.rabbitmq import RabbitmqBroker, _RabbitmqConsumer, _RabbitmqMessage
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import compute_backoff, q_name
from dramatiq.errors import ConnectionClosed, DecodeError
from dramatiq.logging import get_logger

from workers.dramatiq_internals.keys import REDIS_ID_OPTION, acks_key, messages_key, queue_key
from workers.dramatiq_internals.worker import delayed_redis_ids, in_consumer_thread, withdraw_waiting
from workers.signing import MalformedMessage, MessageRefused, unwrap

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

#: Seconds a consumer of a paused queue waits before it looks again.
PAUSED_POLL = 0.5


def is_paused(broker, queue_name: str) -> bool:
    """True if ``queue_name`` is a queue (not a delay queue) that is paused; a delay queue never is."""
    from workers.pauses import paused_view  # models load after the broker is built

    return q_name(queue_name) == queue_name and queue_name in paused_view(broker)


#: Seconds a Redis command may wait for its reply, or for a connection (unless the URL says otherwise).
CONNECTION_TIMEOUTS = {"socket_timeout": 30, "socket_connect_timeout": 10, "socket_keepalive": True}
#: What redis-py raises when Redis cannot be reached or did not answer in time.
CONNECTION_LOST = (redis.ConnectionError, redis.TimeoutError)


class ConsumerConnectionLost(ConnectionClosed, redis.ConnectionError):
    """Redis went away under a consumer thread: a connection error to its loop and to redis-py callers alike."""


class GuardedRedisBroker(RedisBroker):
    """Dramatiq's RedisBroker whose consumers dead-letter what they cannot decode instead of stalling,
    and take back what a consumer that lost its connection was holding."""

    def __init__(self, *, url: str | None = None, **options) -> None:
        if url and options.get("client") is None:
            # redis-py waits for ever by default: a connection left half-open by a network fault
            # or a Redis that died mid-reply would hang the thread on it (a consumer, the
            # housekeeping) for good. With timeouts it fails, and its loop connects afresh.
            pool = redis.ConnectionPool.from_url(url, **CONNECTION_TIMEOUTS)
            options["client"] = redis.Redis(connection_pool=pool)
        super().__init__(**options)
        self.find_fetched_script = self.client.register_script(FIND_FETCHED)
        self.requeue_orphans_script = self.client.register_script(REQUEUE_ORPHANS)
        self.requeue_held_script = self.client.register_script(REQUEUE_HELD)
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
            return super().enqueue(message, delay=delay)
        except CONNECTION_LOST as error:
            if in_consumer_thread() and not isinstance(error, ConnectionClosed):
                raise ConsumerConnectionLost(str(error)) from None
            raise

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


class GuardedRedisConsumer(_RedisConsumer):
    def __init__(self, broker, queue_name, prefetch, timeout, *, outstanding=None, restarted=False) -> None:
        super().__init__(broker, queue_name, prefetch, timeout)
        self.logger = get_logger(__name__, type(self))
        self.outstanding: set[str] = outstanding if outstanding is not None else set()
        self.orphans_pending = restarted
        self.standing_down = False

    # A message stays outstanding until Redis has its ack: one whose ack failed (Redis away) is
    # still in the ack set, and must not be taken back as an orphan and run a second time while
    # the consumer thread retries the ack.
    def ack(self, message):
        try:
            super().ack(message)
        except redis.TimeoutError as error:  # Dramatiq's retries the ack on a connection error only
            raise ConnectionClosed(error) from None
        self.outstanding.discard(message.options.get(REDIS_ID_OPTION))

    def nack(self, message):
        try:
            super().nack(message)
        except redis.TimeoutError as error:
            raise ConnectionClosed(error) from None
        self.outstanding.discard(message.options.get(REDIS_ID_OPTION))

    def requeue(self, messages):
        # Called as the consumer closes, often because Redis is away: what cannot go back now
        # stays in the ack set, and the next consumer of this queue takes it back as an orphan.
        try:
            super().requeue(messages)
        except CONNECTION_LOST as error:
            raise ConnectionClosed(error) from None

    def _take_back_orphans(self) -> None:
        # Still held: messages handed to the worker threads (they will be acknowledged through
        # this consumer) and, of a delay queue, those still in the consumer thread's memory.
        keep = set(self.outstanding)
        if q_name(self.queue_name) != self.queue_name:
            keep &= delayed_redis_ids(threading.current_thread(), REDIS_ID_OPTION)
        moved = self.broker.requeue_orphans(self.queue_name, keep)
        self.outstanding.intersection_update(keep)
        self.orphans_pending = False
        if moved:
            self.logger.warning(
                "Put back %d message(s) of queue %r dropped with a lost connection.", moved, self.queue_name
            )

    def _stand_down(self) -> None:
        # A paused queue's messages this worker took and has not started go back to the head of
        # the queue: those waiting for a worker thread, and those fetched but not handed out yet.
        withdrawn = withdraw_waiting(threading.current_thread(), self.queue_name)
        redis_ids = []
        for message in withdrawn:
            self.queued_message_ids.discard(message.message_id)
            self.outstanding.discard(message.options.get(REDIS_ID_OPTION))
            redis_ids.append(message.options.get(REDIS_ID_OPTION))
        unread = []
        for data in self.message_cache:
            fields = unwrap(data) if data is not None else None
            options = fields.get("options") if isinstance(fields, dict) else None
            redis_id = options.get(REDIS_ID_OPTION) if isinstance(options, dict) else None
            if isinstance(redis_id, str):
                redis_ids.append(redis_id)
            else:
                unread.append(data)  # refused once the queue is resumed
        self.message_cache = unread
        moved = self.broker.requeue_held(self.queue_name, [redis_id for redis_id in redis_ids if redis_id])
        if moved:
            self.logger.info("Queue %r is paused: put back %d message(s) not started.", self.queue_name, moved)

    def __next__(self):
        # Dramatiq's loop (pop from the prefetched cache, else fetch up to the prefetch, else
        # back off), with each body decoded by ``_admit``, which never raises.
        try:
            if self.orphans_pending:
                self._take_back_orphans()
            if is_paused(self.broker, self.queue_name):
                if not self.standing_down:
                    self.standing_down = True
                    self.logger.info("Queue %r is paused: taking none of its messages.", self.queue_name)
                self._stand_down()
                time.sleep(PAUSED_POLL)
                return None
            if self.standing_down:
                self.standing_down = False
                self.logger.info("Queue %r is resumed.", self.queue_name)
            while True:
                if self.message_cache:
                    data = self.message_cache.pop(0)
                    if data is None:
                        # The id was fetched but its body is gone from the hash; nothing to run.
                        self.logger.warning("Found no body for a message fetched from queue %r.", self.queue_name)
                        continue
                    self.misses = 0
                    message = self._admit(data)
                    if message is None:
                        continue
                    self.queued_message_ids.add(message.message_id)
                    self.outstanding.add(message.options[REDIS_ID_OPTION])
                    return MessageProxy(message)

                messages = []
                if self.outstanding_message_count < self.prefetch:
                    self.message_cache = messages = self.broker.do_fetch(
                        self.queue_name, self.prefetch - self.outstanding_message_count
                    )
                if not messages:
                    self.misses, backoff_ms = compute_backoff(self.misses, max_backoff=self.timeout)
                    time.sleep(backoff_ms / 1000)
                    return None
        except CONNECTION_LOST as error:
            raise ConnectionClosed(error) from None

    def _admit(self, data: bytes) -> Message | None:
        """The message in ``data``; or None once a body that cannot run has been dead-lettered."""
        try:
            message = Message.decode(data)
            # Without its Redis id a message could never be acknowledged: it would be held for ever.
            if not isinstance(message.options.get(REDIS_ID_OPTION), str):
                raise MalformedMessage("the message has no redis_message_id option")
            check_queue(message, self.queue_name)
            return message
        except Exception as error:
            redis_message_id = self.broker.find_fetched(self.queue_name, data)
            refuse(data, error, queue_name=q_name(self.queue_name), message_id=redis_message_id, logger=self.logger)
            if redis_message_id is not None:
                # Out of the ack set and the queue's hash, into the broker's dead-letter queue.
                self.broker.do_nack(self.queue_name, redis_message_id)
            return None


class GuardedRabbitmqBroker(RabbitmqBroker):
    """Dramatiq's RabbitmqBroker whose consumers record what they cannot decode as dead letters."""

    @property
    def consumer_class(self):
        return GuardedRabbitmqConsumer


class GuardedRabbitmqConsumer(_RabbitmqConsumer):
    def __next__(self):
        # Dramatiq's consumer already rejects a body that does not decode (RabbitMQ then
        # dead-letters it); here it is also recorded, and a message without a usable shape is
        # refused before the consumer thread trips over it.
        try:
            if is_paused(self.broker, self.queue_name):
                # What RabbitMQ already pushed to this consumer stays unacknowledged in its buffer;
                # what waits for a worker thread goes back to the queue.
                for message in withdraw_waiting(threading.current_thread(), self.queue_name):
                    self.known_tags.discard(message._tag)
                    self.channel.basic_nack(message._tag, requeue=True)
                self.connection.sleep(PAUSED_POLL)  # keeps the connection's heartbeats going
                return None
            method, _properties, body = next(self.iterator)
            if method is None:
                return None
        except (AssertionError, pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError) as error:
            if getattr(error, "reply_code", None) == 404:
                self.broker.queues_pending.add(q_name(self.queue_name))
            raise ConnectionClosed(error) from None
        try:
            message = Message.decode(body)
            check_queue(message, self.queue_name)
        except Exception as error:
            refuse(body, error, queue_name=q_name(self.queue_name), message_id=None, logger=self.logger)
            self._nack(method.delivery_tag)
            return None
        self.known_tags.add(method.delivery_tag)
        return _RabbitmqMessage(method.redelivered, method.delivery_tag, message)


def check_queue(message: Message, queue_name: str) -> None:
    """Raise ``MalformedMessage`` unless the message names the queue it was read from.

    A worker thread hands a finished message back to the consumer of the queue the message
    names; a queue this worker does not consume would end that thread.
    """
    if message.queue_name != queue_name:
        raise MalformedMessage(
            f"the message names queue {message.queue_name[:100]!r}, but was read from {queue_name!r}"
        )


def refuse(data: bytes, error: BaseException, *, queue_name: str, message_id: str | None, logger) -> None:
    """Record a body a consumer will not run as a dead letter, and say so in one line."""
    from workers import dead_letters  # models load after the broker is built

    reason, description = refusal(error)
    # The broker's id when known; else the body's hash, the same on every redelivery of it.
    message_id = message_id or hashlib.sha256(data).hexdigest()
    logger.error("Refused message %s on queue %s: %s (%s).", message_id, queue_name, reason, description)
    try:
        dead_letters.record_refused(
            data=data, reason=reason, error=description, queue_name=queue_name, message_id=message_id
        )
    except Exception:
        logger.exception("Could not record refused message %s as a dead letter.", message_id)
    finally:
        # Consumer threads are not worker threads: nothing else closes their connections.
        connections.close_all()


def refusal(error: BaseException) -> tuple[str, str]:
    """The dead-letter reason and a one-line description of why a body was refused."""
    cause = error.error if isinstance(error, DecodeError) and isinstance(error.error, BaseException) else error
    if isinstance(cause, MessageRefused):
        return cause.reason, str(cause)
    # Anything else that broke decoding (the message's constructor, a different encoder).
    return MalformedMessage.reason, f"{type(cause).__name__}: {str(cause)[:200]}"


def stuffed_exception(message) -> BaseException | None:
    """The exception the worker stuffed into a message proxy (an unknown actor, a skip), if any."""
    return getattr(message, "_exception", None) if isinstance(message, MessageProxy) else None
