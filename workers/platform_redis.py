"""The Redis the platform keeps its own state in: the broker's, or REDIS_URL's when the broker is not Redis."""

from __future__ import annotations

import threading

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

_clients: dict[str, redis.Redis] = {}
_mutex = threading.Lock()


def platform_client(broker: dramatiq.Broker) -> redis.Redis | None:
    """The broker's own client on Redis, a shared client on ``settings.REDIS_URL`` on RabbitMQ.

    None on the StubBroker: it lives in one process's memory, where nothing crashes or
    restarts underneath a job.
    """
    if isinstance(broker, RedisBroker):
        return broker.client
    if isinstance(broker, StubBroker):
        return None
    from django.conf import settings  # the broker is built before settings are read

    with _mutex:
        if settings.REDIS_URL not in _clients:
            from workers.dramatiq_internals.consumers import CONNECTION_TIMEOUTS

            _clients[settings.REDIS_URL] = redis.Redis.from_url(settings.REDIS_URL, **CONNECTION_TIMEOUTS)
        return _clients[settings.REDIS_URL]


def platform_namespace(broker: dramatiq.Broker) -> str:
    """The prefix of the platform's keys: the Redis broker's namespace, else Dramatiq's default."""
    return getattr(broker, "namespace", "dramatiq")
