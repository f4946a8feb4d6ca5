"""Fixtures for the platform's delivery tests: a broker that sends to the real Redis."""

from __future__ import annotations

import pytest
from dramatiq.brokers.redis import RedisBroker

from workers import queues


@pytest.fixture
def redis_broker(redis_client, redis_url) -> RedisBroker:
    """A bare RedisBroker for the test process to send messages that real workers consume."""
    broker = RedisBroker(url=redis_url, middleware=[])
    for name in queues.names():
        broker.declare_queue(name)
    yield broker
    broker.close()
