"""Weighted queues through a real worker: shares follow the weights, and an idle queue's share moves."""

from __future__ import annotations

import pytest

from tests.support import tasks
from workers import queues
from workers.testing import wait_until

pytestmark = pytest.mark.delivery


def test_a_busy_worker_serves_queues_in_proportion_to_their_weights(
    start_worker, redis_broker, redis_url, redis_client
):
    # Given 300 short jobs waiting in each queue
    for queue in queues.names():
        for _ in range(300):
            redis_broker.enqueue(tasks.slow.message(f"share:{queue}", 0.02).copy(queue_name=queue))

    # When one worker of four threads runs them (counted past its start-up, in steady state)
    start_worker(redis_url=redis_url, threads=4)
    before = counts_after(redis_client, 60)
    after = counts_after(redis_client, 300)
    served = {queue: after[queue] - before[queue] for queue in queues.names()}
    share = {queue: served[queue] / sum(served.values()) for queue in queues.names()}

    # Then the shares lean the way of the weights 6 : 3 : 2 : 1 (equal shares would be 1/4 each),
    # and the lightest queue is not starved
    assert share["urgent"] > max(share["default"], share["mailers"], share["low"]), served
    assert share["urgent"] > 0.35, served
    assert 0 < share["low"] < 0.15, served


def counts_after(redis_client, total: int) -> dict[str, int]:
    def count() -> dict[str, int]:
        return {queue: redis_client.llen(f"share:{queue}") for queue in queues.names()}

    wait_until(lambda: sum(count().values()) >= total, timeout=60, what=f"{total} jobs")
    return count()


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
