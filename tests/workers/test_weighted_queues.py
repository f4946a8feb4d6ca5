"""Weighted queues through a real worker: shares follow the weights, and an idle queue's share moves."""

from __future__ import annotations

import pytest

from tests.support import tasks
from workers import queues
from workers.testing import wait_until

pytestmark = pytest.mark.delivery


def processed(redis_client, key: str) -> int:
    return redis_client.llen(key)


def test_a_busy_worker_serves_queues_in_proportion_to_their_weights(
    start_worker, redis_broker, redis_url, redis_client
):
    # Given 300 short jobs waiting in each queue
    for queue in queues.names():
        for _ in range(300):
            redis_broker.enqueue(tasks.slow.message(f"share:{queue}", 0.01).copy(queue_name=queue))

    # When one worker of four threads has run 240 of them
    start_worker(redis_url=redis_url, threads=4)
    wait_until(
        lambda: sum(processed(redis_client, f"share:{q}") for q in queues.names()) >= 240,
        timeout=60,
        what="240 jobs",
    )
    counts = {q: processed(redis_client, f"share:{q}") for q in queues.names()}
    total = sum(counts.values())

    # Then the shares follow the weights 6 : 3 : 2 : 1, and the lightest queue was not starved
    assert counts["urgent"] > counts["default"] > counts["mailers"] > counts["low"] > 0, counts
    assert 0.35 < counts["urgent"] / total < 0.65, counts
    assert counts["low"] / total < 0.2, counts


def test_an_idle_worker_gives_the_lightest_queue_every_thread(start_worker, redis_broker, redis_url):
    # Given only low-priority work and a worker of four threads
    for _ in range(16):
        redis_broker.enqueue(tasks.slow.message("alone", 0.3))
    start_worker(redis_url=redis_url, threads=4)

    # When it is done
    wait_until(lambda: len(tasks.recorded("alone")) == 16, timeout=60, what="16 low jobs")

    # Then four of them ran at the same time: the other queues' share went to it
    spans = [(job["started"], job["at"]) for job in tasks.recorded("alone")]
    overlap = max(sum(1 for start, end in spans if start <= moment < end) for moment, _ in spans)
    assert overlap == 4
