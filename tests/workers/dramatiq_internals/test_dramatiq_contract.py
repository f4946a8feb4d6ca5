"""What workers/dramatiq_internals/ takes from Dramatiq's private parts is still there; fails when it changes."""

from __future__ import annotations

import inspect
from pathlib import Path

import dramatiq
import pytest
from dramatiq.broker import MessageProxy
from dramatiq.brokers.rabbitmq import _RabbitmqConsumer
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.worker import ConsumerThread, WorkerThread

from tests.support import tasks
from workers.bulk import enqueue_many
from workers.dramatiq_internals import WRITTEN_FOR, version_problem
from workers.dramatiq_internals.keys import REDIS_ID_OPTION
from workers.dramatiq_internals.worker import FAILED_TEXT
from workers.testing import declare_actors

DISPATCH = Path(inspect.getfile(RedisBroker)).parent / "redis" / "dispatch.lua"


def test_the_installed_dramatiq_is_the_release_the_internals_were_read_from():
    assert version_problem() is None, version_problem()
    assert dramatiq.__version__.startswith(WRITTEN_FOR + ".")


def test_another_release_is_refused_at_start_with_a_reason():
    problem = version_problem("3.0.0")
    assert "Dramatiq 3.0.0 is installed" in problem and "test_dramatiq_contract" in problem
    assert version_problem(WRITTEN_FOR + ".9") is None


def test_the_redis_key_layout_is_the_dispatch_scripts():
    # keys.py: queues, message hashes, ack sets, heartbeats, dead letters
    script = DISPATCH.read_text()
    for fragment in (
        'local acks = namespace .. ":__acks__." .. worker_id',
        'local heartbeats = namespace .. ":__heartbeats__"',
        'local queue_acks = acks .. "." .. queue_name',
        'local queue_full_name = namespace .. ":" .. queue_name',
        'local queue_messages = queue_full_name .. ".msgs"',
        'local xqueue_full_name = namespace .. ":" .. queue_canonical_name .. ".XQ"',
        'redis.call("hset", queue_messages, message_id, message_data)',
        'redis.call("rpush", queue_full_name, message_id)',
        'redis.call("sadd", queue_acks, message_id)',
    ):
        assert fragment in script, fragment
    assert f'"{REDIS_ID_OPTION}"' in inspect.getsource(RedisBroker.enqueue)


def test_the_consumers_the_guarded_ones_copy_and_extend():
    redis_next = inspect.getsource(_RedisConsumer.__next__)
    for fragment in ("self.message_cache.pop(0)", "Message.decode(data)", "self.broker.do_fetch(", "compute_backoff"):
        assert fragment in redis_next, fragment
    consumer = _RedisConsumer(None, "default", 1, 1)
    assert {"message_cache", "queued_message_ids", "misses", "prefetch", "timeout"} <= set(vars(consumer))
    rabbit_next = inspect.getsource(_RabbitmqConsumer.__next__)
    assert "next(self.iterator)" in rabbit_next and "known_tags" in rabbit_next


def test_the_consumer_thread_drops_its_delayed_messages_on_a_connection_error():
    # The orphans the guarded Redis consumer takes back (consumers.py), and where they wait meanwhile.
    run = inspect.getsource(ConsumerThread.run)
    assert "self.broker.consume(" in run
    assert "except BrokerConnectionError" in run and "self.delay_queue = PriorityQueue()" in run
    assert "self.prefetch" in inspect.getsource(ConsumerThread.__init__)


def test_the_worker_loop_the_in_process_harness_replays():
    loop = inspect.getsource(WorkerThread.process_message)
    steps = ['emit_before("process_message"', "if not message.failed:", 'emit_after("process_message", message, result']
    positions = [loop.index(step) for step in steps]
    assert positions == sorted(positions)
    assert "except SkipMessage" in loop and 'emit_after("skip_message"' in loop
    assert FAILED_TEXT in loop
    assert hasattr(MessageProxy, "stuff_exception")


@pytest.mark.delivery
def test_a_bulk_send_is_read_by_dramatiqs_own_consumer(redis_broker):
    # Given messages written by enqueue_many straight into Redis's layout
    declare_actors(redis_broker, tasks.noop)
    sent = enqueue_many([tasks.noop.message(f"bulk-{n}") for n in range(3)], broker=redis_broker)

    # Then Dramatiq's stock consumer fetches and acknowledges them like any other
    consumer = redis_broker.consume("default", prefetch=10, timeout=100)
    received = [next(consumer) for _ in range(3)]
    assert [message.message_id for message in received] == [message.message_id for message in sent]
    for message in received:
        consumer.ack(message)
    assert redis_broker.client.hlen("dramatiq:default.msgs") == 0
