"""Nothing is lost when Redis crashes: queued jobs survive it, and a running worker rides it out."""

from __future__ import annotations

import pytest
from dramatiq.brokers.redis import RedisBroker

from tests.support import tasks
from workers import queues
from workers.testing import wait_until

pytestmark = pytest.mark.delivery


def test_jobs_queued_before_a_redis_crash_and_after_it_all_run(private_redis, start_worker, settings):
    # Given 30 jobs queued on a Redis that then crashes (SIGKILL) and comes back
    settings.REDIS_URL = private_redis.url
    broker = RedisBroker(url=private_redis.url, middleware=[])
    for name in queues.names():
        broker.declare_queue(name)
    for _ in range(30):
        broker.enqueue(tasks.noop.message("before"))
    private_redis.kill()
    private_redis.start()

    # When a worker starts, then Redis crashes again under it and 30 more jobs come
    worker = start_worker(redis_url=private_redis.url)
    wait_until(lambda: len(tasks.recorded("before")) == 30, timeout=60, what="the 30 jobs queued before the crash")
    private_redis.kill()
    private_redis.start()
    for _ in range(30):
        broker.enqueue(tasks.noop.message("after"))

    # Then every job ran exactly once: the worker reconnected by itself
    wait_until(lambda: len(tasks.recorded("after")) == 30, timeout=60, what="the 30 jobs queued after the crash")
    assert len(tasks.recorded("before")) == 30
    assert worker.process.poll() is None
    broker.close()
