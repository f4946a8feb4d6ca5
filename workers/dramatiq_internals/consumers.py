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

- ``redis_broker``, ``redis_consumer``: the Redis broker (its sends, fetches, doorbells and
  timeouts) and its consumer's fetch loop; ``held_messages``: the broker's steps over the worker's
  ack sets (orphans and a paused queue's messages put back, a fetched body's id found).
- ``rabbitmq``: the RabbitMQ broker and its consumer.
- ``admission``: what both consumers share: refusing a body, recording it, and paused queues.

The brokers are configured by their path here (``settings.DRAMATIQ_BROKER``), so this module
names every class and helper the rest of the platform uses.
"""

from workers.dramatiq_internals.admission import PAUSED_POLL, check_queue, is_paused, refusal, refuse, stuffed_exception
from workers.dramatiq_internals.rabbitmq import GuardedRabbitmqBroker, GuardedRabbitmqConsumer
from workers.dramatiq_internals.redis_broker import CONNECTION_TIMEOUTS, ConsumerConnectionLost, GuardedRedisBroker
from workers.dramatiq_internals.redis_consumer import CONNECTION_LOST, GuardedRedisConsumer

__all__ = [
    "CONNECTION_LOST",
    "CONNECTION_TIMEOUTS",
    "PAUSED_POLL",
    "ConsumerConnectionLost",
    "GuardedRabbitmqBroker",
    "GuardedRabbitmqConsumer",
    "GuardedRedisBroker",
    "GuardedRedisConsumer",
    "check_queue",
    "is_paused",
    "refusal",
    "refuse",
    "stuffed_exception",
]
