"""Flow limits through real workers on a real Redis: per-key concurrency, rate windows, dead workers' slots."""

from __future__ import annotations

import json

import pytest
import redis

from tests.support import flow_tasks
from workers.models import DeadLetter
from workers.testing import wait_until

pytestmark = pytest.mark.delivery


def recorded(url: str, key: str) -> list[dict]:
    return [json.loads(item) for item in redis.Redis.from_url(url).lrange(key, 0, -1)]


def largest_overlap(runs: list[dict]) -> int:
    """The most runs in progress at one moment, from their start and end times."""
    events = sorted([(run["started"], 1) for run in runs] + [(run["ended"], -1) for run in runs])
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def test_no_key_ever_runs_more_jobs_at_once_than_its_limit(start_worker, redis_broker, redis_url):
    # Given two worker processes of four threads each, and 200 jobs of 50 ms over five groups limited to two each
    start_worker(redis_url=redis_url, processes=2, threads=4)
    for number in range(200):
        redis_broker.enqueue(flow_tasks.two_per_group.message("runs", f"group-{number % 5}", 0.05))

    # When they have all run
    wait_until(lambda: len(recorded(redis_url, "runs")) == 200, timeout=60, what="200 runs")

    # Then no group ever had more than two running at once, yet each used both its slots
    runs = recorded(redis_url, "runs")
    overlaps = {
        group: largest_overlap([run for run in runs if run["group"] == group]) for group in {r["group"] for r in runs}
    }
    assert overlaps == {f"group-{number}": 2 for number in range(5)}
    # And the jobs that waited were deferred, not retried, and none was dead-lettered
    assert all(run["retries"] == 0 for run in runs)
    assert any(run["deferrals"] > 0 for run in runs)
    assert not DeadLetter.objects.exists()
