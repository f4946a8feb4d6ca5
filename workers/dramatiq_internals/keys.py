"""The Redis broker's key layout, as its dispatch script (dramatiq/brokers/redis/dispatch.lua) writes it.

A queue is a list of Redis message ids, ``<ns>:<queue>``, with the bodies in the hash
``<ns>:<queue>.msgs`` until they are acknowledged; delayed messages wait in the queue
``<queue>.DQ`` the same way, dead-lettered ones in the sorted set ``<queue>.XQ`` (and its
``.msgs``). A worker's fetched, unacknowledged ids are in its ack set
``<ns>:__acks__.<worker id>.<queue>``, and each worker's last beat in ``<ns>:__heartbeats__``.
"""

from __future__ import annotations

from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import dq_name, q_name, xq_name

__all__ = [
    "REDIS_ID_OPTION",
    "MESSAGES_SUFFIX",
    "acks_key",
    "acks_pattern",
    "dq_name",
    "heartbeats_key",
    "messages_key",
    "q_name",
    "queue_key",
    "xq_name",
]

#: The message option holding a message's id in Redis, fresh for each send of it.
REDIS_ID_OPTION = "redis_message_id"
#: A queue's message hash is the queue's key with this suffix.
MESSAGES_SUFFIX = ".msgs"


def queue_key(broker: RedisBroker, queue_name: str) -> str:
    return f"{broker.namespace}:{queue_name}"


def messages_key(broker: RedisBroker, queue_name: str) -> str:
    return queue_key(broker, queue_name) + MESSAGES_SUFFIX


def acks_key(broker: RedisBroker, worker_id: str, queue_name: str) -> str:
    return f"{broker.namespace}:__acks__.{worker_id}.{queue_name}"


def acks_pattern(broker: RedisBroker, *, worker_id: str = "*", queue_name: str = "*") -> str:
    """A SCAN pattern for ack sets: one worker's, one queue's, or all."""
    return acks_key(broker, worker_id, queue_name)


def heartbeats_key(broker: RedisBroker) -> str:
    return f"{broker.namespace}:__heartbeats__"
