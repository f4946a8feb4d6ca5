"""Flow limits through real workers on a real Redis: per-key concurrency, rate windows, dead workers' slots."""

from __future__ import annotations

import json

import pytest
import redis

from tests.support import flow_tasks
from workers.dramatiq_internals.consumers import GuardedRedisBroker
from workers.middleware.limits import FlowControl
from workers.models import DeadLetter
from workers.queue_counts import queue_stats
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


def test_a_rate_limit_holds_in_every_window_and_uses_most_of_it(start_worker, redis_broker, redis_url):
    # Given two workers and far more jobs than a rate of ten per two seconds lets start in eight seconds
    start_worker(redis_url=redis_url, processes=2, threads=4)
    for _ in range(100):
        redis_broker.enqueue(flow_tasks.ten_per_two_seconds.message("rated"))

    # When the limit has been saturated for a while
    wait_until(lambda: len(recorded(redis_url, "rated")) >= 45, timeout=60, what="45 starts")

    # Then no two-second window holds more than ten starts
    starts = sorted(run["started"] for run in recorded(redis_url, "rated"))
    busiest = max(sum(1 for other in starts if start <= other < start + 2.0) for start in starts)
    assert busiest <= 10
    # And once the first window's ten had started, the rest came at (nearly) the allowed rate, five a second
    steady = (len(starts) - 11) / (starts[-1] - starts[10])
    assert steady >= 0.85 * 5, steady
    # And no job spent a retry
    assert all(run["retries"] == 0 for run in recorded(redis_url, "rated"))


def test_a_killed_workers_slots_free_within_the_lease_time(start_worker, redis_broker, redis_url):
    # Given a worker whose leases last 3 s holding both slots of a group with jobs that run for a minute
    env = {"REDIS_HEARTBEAT_TIMEOUT_MS": "3000"}
    doomed = start_worker(redis_url=redis_url, threads=2, env=env, queues=["default"])
    for job in range(2):
        redis_broker.enqueue(flow_tasks.holds_a_slot.message("held", "group", 60, job))
    wait_until(lambda: len(recorded(redis_url, "held")) == 2, timeout=30, what="both slots held")

    # When the worker is killed and another worker is asked to run a job of that group
    doomed.kill()
    start_worker(redis_url=redis_url, threads=2, env=env, queues=["default"])
    redis_broker.enqueue(flow_tasks.holds_a_slot.message("after", "group", 0, 9))

    # Then that job starts once the dead worker's leases expire, within the lease time + 5 s
    wait_until(lambda: recorded(redis_url, "after"), timeout=3 + 5, what="the job after the kill")
    assert recorded(redis_url, "after")[0]["retries"] == 0


def test_a_key_with_few_jobs_is_not_held_behind_a_key_with_many(start_worker, redis_broker, redis_url):
    # Given a sender whose broker knows the limits (as the web app's does)
    sender = GuardedRedisBroker(url=redis_url, middleware=[FlowControl()])
    sender.declare_actor(flow_tasks.two_per_group)
    # And one worker of four threads, and 2,000 jobs of group A queued before ten of group B
    for _ in range(2000):
        sender.enqueue(flow_tasks.two_per_group.message("fair", "A", 0.05))
    # (which the queue's count includes, though they wait in the group's lane)
    assert next(row for row in queue_stats(sender) if row.name == "default").ready == 2000
    start_worker(redis_url=redis_url, threads=4)
    for _ in range(10):
        sender.enqueue(flow_tasks.two_per_group.message("fair", "B", 0.05))

    # When B's jobs have run
    wait_until(lambda: sum(run["group"] == "B" for run in recorded(redis_url, "fair")) == 10, timeout=60, what="B")

    # Then B's jobs were served turn about with A's: all ten started before A's 100th did
    runs = recorded(redis_url, "fair")
    last_b = max(run["started"] for run in runs if run["group"] == "B")
    assert sum(run["group"] == "A" and run["started"] < last_b for run in runs) < 100
    # And A never ran more than its two at once while it was being overtaken
    assert largest_overlap([run for run in runs if run["group"] == "A"]) <= 2


def test_urgent_work_starts_at_once_on_its_reserved_threads_while_every_other_thread_is_busy(
    start_worker, redis_broker, redis_url
):
    # Given supervised workers of two threads with one thread reserved for the urgent queue
    worker = start_worker(redis_url=redis_url, supervised=True, threads=2, env={"JOB_RESERVED_THREADS": "urgent=1"})
    worker.wait_for_log(r"Worker process is ready for action", count=2)
    # And more slow low-queue jobs than the unreserved threads, two of them running
    for _ in range(6):
        redis_broker.enqueue(flow_tasks.slow_low.message("low", 4))
    wait_until(lambda: len(recorded(redis_url, "low:started")) == 2, timeout=30, what="two low jobs running")

    # When an urgent job is sent
    redis_broker.enqueue(flow_tasks.urgent.message("urgent"))

    # Then it starts before either of the running low jobs ends: on the reserved thread
    wait_until(lambda: recorded(redis_url, "urgent"), timeout=30, what="the urgent job")
    wait_until(lambda: recorded(redis_url, "low"), timeout=30, what="a low job's end")
    first_end = min(run["ended"] for run in recorded(redis_url, "low"))
    assert recorded(redis_url, "urgent")[0]["started"] < first_end
    assert worker.log_lines(r"1 thread\(s\) for urgent")


def test_a_job_over_its_limit_is_parked_and_starts_as_soon_as_a_slot_frees(start_worker, redis_broker, redis_url):
    # Given one worker of four threads, and four jobs of one group (two at a time) that run 1 s each
    start_worker(redis_url=redis_url, threads=4, queues=["default"])
    for _ in range(4):
        redis_broker.enqueue(flow_tasks.two_per_group.message("woken", "group", 1.0))

    # When they have all run
    wait_until(lambda: len(recorded(redis_url, "woken")) == 4, timeout=30, what="four runs")

    # Then the two that found the group full were deferred once each, not polled back again and again
    runs = sorted(recorded(redis_url, "woken"), key=lambda run: run["started"])
    assert [run["deferrals"] for run in runs] == [0, 0, 1, 1]
    # And each started as soon as a slot freed, woken by the job that gave it back
    first_ends = sorted(run["ended"] for run in runs[:2])
    assert all(0 <= later["started"] - end < 0.5 for later, end in zip(runs[2:], first_ends, strict=True))
    assert largest_overlap(runs) == 2
    assert all(run["retries"] == 0 for run in runs)


def test_jobs_parked_behind_a_killed_workers_slots_all_run(start_worker, redis_broker, redis_url):
    # Given a worker whose leases last 3 s holding both slots of a group with jobs of a minute
    env = {"REDIS_HEARTBEAT_TIMEOUT_MS": "3000"}
    doomed = start_worker(redis_url=redis_url, threads=4, env=env, queues=["default"])
    for job in range(2):
        redis_broker.enqueue(flow_tasks.holds_a_slot.message("parked", "group", 60, job))
    wait_until(lambda: len(recorded(redis_url, "parked")) == 2, timeout=30, what="both slots held")
    # And three more jobs of that group parked behind them
    for job in range(2, 5):
        redis_broker.enqueue(flow_tasks.holds_a_slot.message("parked", "group", 0, job))
    wait_until(
        lambda: len(doomed.log_lines(r"Deferred message \S+ of holds_a_slot until a slot frees")) == 3,
        timeout=30,
        what="three jobs parked",
    )

    # When the worker is killed and another one starts
    doomed_pid = recorded(redis_url, "parked")[0]["pid"]
    doomed.kill()
    start_worker(redis_url=redis_url, threads=4, env=env, queues=["default"])

    # Then every job runs there: the two it held, put back, and the three parked, none lost
    def ran_on_survivor() -> set[int]:
        return {run["job"] for run in recorded(redis_url, "parked") if run["pid"] != doomed_pid}

    wait_until(lambda: ran_on_survivor() == {0, 1, 2, 3, 4}, timeout=60, what="all five jobs on the survivor")
    assert all(run["retries"] == 0 for run in recorded(redis_url, "parked"))
