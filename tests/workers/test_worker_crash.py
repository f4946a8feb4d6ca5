"""Nothing is lost when a worker is killed mid-job: another worker picks up what it held."""

from __future__ import annotations

import pytest

from tests.support import tasks
from workers.testing import wait_until

pytestmark = pytest.mark.delivery

RECOVERY = {"REDIS_HEARTBEAT_TIMEOUT_MS": "2000", "REDIS_MAINTENANCE_CHANCE": "1000000"}


def test_the_jobs_of_a_killed_worker_run_on_another_worker(start_worker, redis_broker, redis_url):
    # Given a worker busy with a long job, holding 20 more it has prefetched or run
    first = start_worker(redis_url=redis_url, threads=2)
    redis_broker.enqueue(tasks.slow.message("long", 3.0))
    first.wait_for_log(r"job started actor=slow")
    for number in range(20):
        redis_broker.enqueue(tasks.noop.message(f"short-{number}"))

    # When it is killed with SIGKILL mid-job, and another worker starts
    first.kill()
    assert tasks.recorded("long") == []
    start_worker(redis_url=redis_url, threads=2, env=RECOVERY)

    # Then the long job runs to its end once, and no short job is lost
    wait_until(lambda: len(tasks.recorded("long")) == 1, timeout=60, what="the long job, run again")
    wait_until(
        lambda: all(tasks.recorded(f"short-{number}") for number in range(20)), timeout=60, what="all short jobs"
    )
    assert len(tasks.recorded("long")) == 1
