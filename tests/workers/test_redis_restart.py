"""Nothing is lost when Redis crashes: queued jobs survive it, and a running worker rides it out."""

from __future__ import annotations

import time
from queue import PriorityQueue

import pytest
import redis
from dramatiq import Message
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker
from dramatiq.worker import ConsumerThread, _WorkQueueItem

from tests.support import tasks
from workers import queues
from workers.dramatiq_internals.consumers import GuardedRedisBroker
from workers.testing import free_port, wait_until

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
        lambda: (
            all(tasks.recorded(f"prefetched-{n}") for n in range(10))
            and all(tasks.recorded(f"delayed-{n}") for n in range(20))
        ),
        timeout=90,
        what="the jobs held in memory when Redis went away",
    )
    assert all(len(tasks.recorded(f"delayed-{n}")) == 1 for n in range(20))
    assert all(len(tasks.recorded(f"prefetched-{n}")) == 1 for n in range(10))
    assert worker.process.poll() is None
    broker.close()


def test_a_consumer_thread_outlives_redis_going_away_while_it_sends_due_delayed_messages(caplog):
    # Given a delay queue's consumer thread holding two messages that fall due while Redis is away
    broker = GuardedRedisBroker(url=f"redis://127.0.0.1:{free_port()}/0", middleware=[])
    broker.declare_queue("default")
    thread = ConsumerThread(
        broker=broker, queue_name="default.DQ", prefetch=0, work_queue=PriorityQueue(), worker_timeout=100
    )
    for number in range(2):
        message = Message(
            queue_name="default.DQ",
            actor_name="noop",
            args=(f"due-{number}",),
            kwargs={},
            options={"eta": 0, "redis_message_id": f"id-{number}"},
        )
        thread.delay_queue.put(_WorkQueueItem(0, MessageProxy(message)))

    # When it tries to send them
    thread.start()
    wait_until(
        lambda: "Consumer encountered a connection error" in caplog.text,
        timeout=10,
        what="the consumer thread to meet the connection error",
    )

    # Then it takes it for a lost connection and restarts its consumer (which takes the messages
    # back from its ack set once Redis answers), instead of dying
    time.sleep(0.5)
    assert thread.is_alive()
    assert "unexpected error" not in caplog.text
    thread.stop()
    thread.join(10)
    assert not thread.is_alive()
