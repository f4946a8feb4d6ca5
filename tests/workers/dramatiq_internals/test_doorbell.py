"""The doorbells of a worker's idle consumers: one listener wakes the consumer rung, beats, and finds unrung work."""

from __future__ import annotations

import threading

import pytest

from workers.dramatiq_internals.consumers import GuardedRedisBroker
from workers.dramatiq_internals.doorbell import Doorbells
from workers.dramatiq_internals.keys import heartbeats_key, queue_key
from workers.pauses import pause_queue, paused_view
from workers.testing import wait_until

pytestmark = pytest.mark.delivery


def waiting(bells: Doorbells, names: list[str], woken: dict[str, bool]) -> list[threading.Thread]:
    """A thread per queue, each waiting (as an idle consumer does) until its queue rings."""
    threads = [threading.Thread(target=lambda n=name: woken.update({n: bells.wait(n, 20_000)})) for name in names]
    for thread in threads:
        thread.start()
    wait_until(lambda: bells.listening == frozenset(names), timeout=5, what="the listener to hear every queue")
    return threads


def test_a_send_wakes_the_idle_consumer_of_its_queue_and_no_other(redis_client, redis_url):
    # Given a worker's broker whose consumers of default and low are idle
    broker = GuardedRedisBroker(url=redis_url, middleware=[])
    bells, woken = Doorbells(broker), {}
    default, low = waiting(bells, ["default", "low"], woken)

    # When a message is sent to default
    broker.send_messages({"default": [("id-1", b"{}", "")]})

    # Then default's consumer wakes, rung, and low's still waits
    default.join(5)
    assert woken == {"default": True}
    # And the listener wrote the worker's heartbeat meanwhile
    assert redis_client.zscore(heartbeats_key(broker), broker.broker_id) is not None

    # When the worker stops, low's consumer wakes at once too
    bells.stop()
    low.join(5)
    assert woken == {"default": True, "low": True}


def test_work_a_sender_did_not_ring_for_is_found(redis_client, redis_url, monkeypatch):
    # Given an idle consumer of default, and a listener that looks at its queue every 200 ms
    monkeypatch.setattr("workers.dramatiq_internals.doorbell.CHECK_MS", 200)
    broker = GuardedRedisBroker(url=redis_url, middleware=[])
    bells, woken = Doorbells(broker), {}
    (default,) = waiting(bells, ["default"], woken)

    # When an id lands on its queue without a ring (as Dramatiq's own broker sends)
    redis_client.rpush(queue_key(broker, "default"), "id-1")

    # Then the consumer is woken to fetch it
    default.join(5)
    assert woken == {"default": True}
    bells.stop()


def test_a_ring_heard_for_a_consumer_that_went_busy_wakes_another_process(redis_client, redis_url):
    # Given two worker processes: in the second, the consumer of default waits idle
    first, second = (GuardedRedisBroker(url=redis_url, middleware=[]) for _ in range(2))
    first_bells, second_bells, woken = Doorbells(first), Doorbells(second), {}
    (default,) = waiting(second_bells, ["default"], woken)

    # When the first process's listener takes default's ring just as its own consumer went busy
    first_bells._heard(first.doorbell_key("default"), "default")

    # Then the ring goes back to the queue, and the idle consumer of the second process wakes
    default.join(5)
    assert woken == {"default": True}
    second_bells.stop()
    first_bells.stop()


def seen_paused(broker: GuardedRedisBroker, queue_name: str) -> bool:
    """Whether a consumer thread of the worker would take ``queue_name`` for paused now."""
    seen = []
    thread = threading.Thread(target=lambda: seen.append(queue_name in paused_view(broker)))
    thread.start()
    thread.join(5)
    return seen[0]


@pytest.mark.django_db(transaction=True)
def test_pausing_a_queue_wakes_its_idle_consumer_to_see_it(redis_client, redis_url, django_capture_on_commit_callbacks):
    # Given a worker whose consumer of low waits idle for a ring
    broker = GuardedRedisBroker(url=redis_url, middleware=[])
    bells, woken = Doorbells(broker), {}
    (low,) = waiting(bells, ["low"], woken)

    # (its process read the paused queues a moment ago: none)
    assert not seen_paused(broker, "low")

    # When staff pause the queue, then the consumer wakes at once to see it, not at its next look
    with django_capture_on_commit_callbacks(execute=True):
        pause_queue("low", username="ops", broker=broker)
    low.join(5)
    assert woken == {"low": True}
    # And it sees the pause, not the copy its process read before the ring
    assert seen_paused(broker, "low")
    bells.stop()
