"""Bulk enqueue: many messages in a few round trips, through the same middleware as one send.

Dramatiq sends one message per Redis round trip (a script call each). Here the messages of a
chunk go in one round trip, all or none, written as the broker's own send writes them (the data
into the queue's hash, the id onto its list or its fair lane, the queue's doorbell rung), after
every middleware's ``before_enqueue`` hook has seen each message and before its ``after_enqueue``
hook, exactly as ``RedisBroker.enqueue`` does one by one. Other brokers send one by one. A unique
job whose twin holds the lock is dropped from the bulk, not an error.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from itertools import islice

import dramatiq
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis
from dramatiq.middleware import Middleware, MiddlewareError

from workers import tracing
from workers.dramatiq_internals.keys import REDIS_ID_OPTION, dq_name, messages_key, queue_key
from workers.dramatiq_internals.lanes import LANE_OPTION
from workers.dramatiq_internals.redis_broker import GuardedRedisBroker
from workers.middleware.message_size import MessageSizeLimit
from workers.uniqueness import DuplicateJob

logger = logging.getLogger(__name__)

#: Messages per pipelined round trip.
CHUNK_SIZE = 1000


def enqueue_many(
    messages: Iterable[Message],
    *,
    delay: int | None = None,
    broker: dramatiq.Broker | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> list[Message]:
    """Send ``messages`` now, ``chunk_size`` per round trip; returns the messages as sent.

    Each chunk reaches Redis whole or not at all; if the broker fails mid-way the exception
    propagates and the chunks before it stay sent. A message over the size limit raises
    ``MessageTooLarge`` before anything of its chunk is sent. Duplicates of unique jobs are left out of
    the result.

    Parameters:
      delay: Wait this long before the jobs may run, in milliseconds.
    """
    broker = broker or dramatiq.get_broker()
    sent: list[Message] = []
    limits = [m for m in broker.middleware if isinstance(m, MessageSizeLimit)]
    for chunk in chunked(messages, chunk_size):
        # Measured before any hook acts on the chunk: an oversized message must not leave the
        # unique locks of the messages before it taken, with nothing sent. It is measured with
        # the trace context it will carry.
        if tracing.tracer() is not None:
            for message in chunk:
                tracing.carry_context(message)
        for limit in limits:
            for message in chunk:
                limit.before_enqueue(broker, message, delay)
        if isinstance(broker, RedisBroker):
            sent.extend(_enqueue_redis(broker, chunk, delay))
        else:
            sent.extend(message for message in (enqueue_one(broker, m, delay=delay) for m in chunk) if message)
    return sent


def enqueue_one(broker: dramatiq.Broker, message: Message, *, delay: int | None = None) -> Message | None:
    """``broker.enqueue``, but a dropped duplicate of a unique job returns None instead of raising."""
    try:
        return broker.enqueue(message, delay=delay)
    except DuplicateJob:
        return None


def chunked(items: Iterable, size: int) -> Iterator[list]:
    """Lists of up to ``size`` items, in order."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _hooks(broker: dramatiq.Broker, name: str) -> list:
    """The middleware that override hook ``name``, in the order the broker calls them.

    Calling only these skips the no-op calls ``broker.emit_before``/``emit_after`` make for
    every middleware, which would otherwise cost more than the send itself. Kept per broker until
    its middleware change, as finding them costs a send of one message as much again.
    """
    key = (id(broker), name)
    middleware, hooks = _HOOKS.get(key, (None, None))
    if middleware != broker.middleware:
        middleware = list(broker.middleware)
        hooks = [m for m in middleware if getattr(type(m), name) is not getattr(Middleware, name)]
        _HOOKS[key] = (middleware, hooks)
    return hooks


#: (broker id, hook name) -> (the broker's middleware then, those of them that override the hook).
_HOOKS: dict[tuple[int, str], tuple[list, list]] = {}


def _emit(hooks: list, name: str, broker: dramatiq.Broker, message: Message, delay: int | None) -> None:
    # As Broker.emit_before/emit_after: a MiddlewareError (DuplicateJob) stops the send, others are logged.
    for middleware in hooks:
        try:
            getattr(middleware, name)(broker, message, delay)
        except MiddlewareError:
            raise
        except Exception:
            logger.critical("Unexpected failure in %s of %r.", name, middleware, exc_info=True)


def _enqueue_redis(broker: RedisBroker, chunk: list[Message], delay: int | None) -> list[Message]:
    # The size limit was checked for the whole chunk already.
    before = [m for m in _hooks(broker, "before_enqueue") if not isinstance(m, MessageSizeLimit)]
    after = list(reversed(_hooks(broker, "after_enqueue")))
    prepared: dict[str, list[Message]] = {}
    for message in chunk:
        # As RedisBroker.enqueue: a fresh Redis id per send, and the delay queue with an eta. The
        # message is built directly (not with Message.copy) and the id is random hex (not a UUID
        # string): the broker treats the id as opaque, and the two halve the cost per message.
        queue_name, options = message.queue_name, {**message.options, REDIS_ID_OPTION: os.urandom(16).hex()}
        if delay is not None:
            queue_name = dq_name(queue_name)
            options["eta"] = current_millis() + delay
        message = Message(
            queue_name=queue_name,
            actor_name=message.actor_name,
            args=message.args,
            kwargs=message.kwargs,
            options=options,
            message_id=message.message_id,
            message_timestamp=message.message_timestamp,
        )
        try:
            _emit(before, "before_enqueue", broker, message, delay)
        except DuplicateJob:
            continue
        prepared.setdefault(queue_name, []).append(message)
    if not prepared:
        return []

    if isinstance(broker, GuardedRedisBroker):
        # One script call for the chunk: each message on its queue or, for an immediate send, on
        # its lane, and each queue's doorbell rung, as the broker's own send does.
        lane = (lambda message: message.options.get(LANE_OPTION) or "") if delay is None else (lambda message: "")
        broker.send_messages(
            {
                queue_name: [(m.options[REDIS_ID_OPTION], m.encode(), lane(m)) for m in messages]
                for queue_name, messages in prepared.items()
            }
        )
    else:
        _push(broker, prepared)
    sent = [message for messages in prepared.values() for message in messages]
    for message in sent:
        _emit(after, "after_enqueue", broker, message, delay)
    return sent


def _push(broker: RedisBroker, prepared: dict[str, list[Message]]) -> None:
    # The broker's enqueue script does exactly this per message (HSET the data, RPUSH the id);
    # here it is one HSET and one RPUSH per queue for the whole chunk, in one MULTI/EXEC.
    with broker.client.pipeline(transaction=True) as pipe:
        for queue_name, messages in prepared.items():
            ids = [message.options[REDIS_ID_OPTION] for message in messages]
            bodies = {id_: message.encode() for id_, message in zip(ids, messages, strict=True)}
            pipe.hset(messages_key(broker, queue_name), mapping=bodies)
            pipe.rpush(queue_key(broker, queue_name), *ids)
        pipe.execute()
