"""Nothing is lost when Redis crashes: queued jobs survive it, and a running worker rides it out."""

from __future__ import annotations

import time

import pytest
import redis
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


def test_jobs_a_live_worker_held_in_memory_run_after_redis_restarts(private_redis, start_worker, settings):
    # Given a worker of one thread busy with a slow job, holding ten prefetched jobs and twenty
    # delayed ones (waiting for their time in its memory, as Dramatiq keeps them)
    settings.REDIS_URL = private_redis.url
    broker = RedisBroker(url=private_redis.url, middleware=[])
    for name in queues.names():
        broker.declare_queue(name)
    worker = start_worker(redis_url=private_redis.url, threads=1)
    broker.enqueue(tasks.slow.message("busy", 3.0))
    worker.wait_for_log(r"job started actor=slow")
    for number in range(10):
        broker.enqueue(tasks.noop.message(f"prefetched-{number}"))
    for number in range(20):
        broker.enqueue(tasks.noop.message(f"delayed-{number}"), delay=4_000)
    client = redis.Redis.from_url(private_redis.url)
    wait_until(
        lambda: client.llen("dramatiq:default") == 0 and client.llen("dramatiq:default.DQ") == 0,
        timeout=30,
        what="the worker to take every job into its memory",
    )

    # When Redis is killed and comes back five seconds later (its append-only file keeps the ack
    # sets), long enough for the worker's consumers to give up their connections
    private_redis.kill()
    time.sleep(5)
    private_redis.start()

    # Then every job still runs, once, without restarting the worker
    wait_until(
        lambda: all(tasks.recorded(f"prefetched-{n}") for n in range(10))
        and all(tasks.recorded(f"delayed-{n}") for n in range(20)),
        timeout=90,
        what="the jobs held in memory when Redis went away",
    )
    assert all(len(tasks.recorded(f"delayed-{n}")) == 1 for n in range(20))
    assert all(len(tasks.recorded(f"prefetched-{n}")) == 1 for n in range(10))
    assert worker.process.poll() is None
    broker.close()
