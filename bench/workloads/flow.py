"""The flow_control scenario's checks, each run whole in this process: workers started, jobs sent, figures printed.

``python -m bench.workloads.flow CHECK`` with the project's environment prints one JSON object.
"""

from __future__ import annotations

import json
import sys
import time

import django

django.setup()

import dramatiq  # noqa: E402
from django.conf import settings  # noqa: E402

from bench.app import flow_tasks  # noqa: E402
from bench.workloads.counter import client  # noqa: E402
from workers.models import DeadLetter  # noqa: E402
from workers.processes import WorkerProcess, wait_until  # noqa: E402


def notes(key: str) -> list[dict]:
    return [json.loads(item) for item in client().lrange(key, 0, -1)]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def largest_overlap(runs: list[dict]) -> int:
    events = sorted([(run["started"], 1) for run in runs] + [(run["ended"], -1) for run in runs])
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def pairs(
    jobs: int = 1000, keys: int = 10, processes: int = 2, threads: int = 8, seconds: float = 0.05, actor=None
) -> dict:
    """Jobs over keys limited to two at once each: the largest overlap per key, and the time against the ideal."""
    actor = actor or flow_tasks.flow_pair
    worker = WorkerProcess(env={}, processes=processes, threads=threads).start()
    try:
        for number in range(jobs):
            actor.send(f"key-{number % keys}", seconds)
        wait_until(lambda: client().llen("flow:pairs") >= jobs, timeout=600, what="every job", interval=0.1)
    finally:
        worker.stop()
    runs = notes("flow:pairs")
    span = max(run["ended"] for run in runs) - min(run["started"] for run in runs)
    ideal = jobs * seconds / min(processes * threads, keys * 2)
    return {
        "overlap": max(
            largest_overlap([run for run in runs if run["group"] == key]) for key in {r["group"] for r in runs}
        ),
        "span": span,
        "ideal": ideal,
        "retries": sum(run["retries"] for run in runs),
        "deferrals": sum(run["deferrals"] for run in runs),
        "dead": DeadLetter.objects.count(),
    }


def rated(minutes: int = 3) -> dict:
    """A rate of 60 a minute saturated for ``minutes``: the busiest 60 s window, and the share of the rate used."""
    worker = WorkerProcess(env={}, processes=2, threads=8).start()
    try:
        for _ in range(60 * (minutes + 2)):
            flow_tasks.flow_rated.send()
        wait_until(lambda: client().llen("flow:rated") > 0, timeout=60, what="a first start")
        first = notes("flow:rated")[0]["started"]
        time.sleep(max(0.0, first + minutes * 60 + 1 - time.time()))
    finally:
        worker.stop()
    starts = sorted(run["started"] for run in notes("flow:rated") if run["started"] < first + minutes * 60)
    busiest = max(sum(1 for other in starts if start <= other < start + 60) for start in starts)
    return {
        "busiest_window": busiest,
        "used": len(starts) / (60 * minutes),
        "retries": sum(run["retries"] for run in notes("flow:rated")),
    }


def fair(many: int = 10_000, few: int = 10) -> dict:
    """Key A queues ``many`` jobs, then key B ``few``, on one worker of four threads: how soon B's start."""
    worker = WorkerProcess(env={}, threads=4).start()
    try:
        for _ in range(many):
            flow_tasks.flow_fair.send("A", 0.05, time.time())
        for _ in range(few):
            flow_tasks.flow_fair.send("B", 0.05, time.time())
        wait_until(lambda: sum(run["group"] == "B" for run in notes("flow:fair")) >= few, timeout=300, what="B's jobs")
    finally:
        worker.stop()
    waits = [run["started"] - run["sent_at"] for run in notes("flow:fair") if run["group"] == "B"]
    return {"p50": percentile(waits, 0.5), "p95": percentile(waits, 0.95)}


def killed() -> dict:
    """A worker SIGKILLed holding both slots of a key: how soon a job of that key starts on another worker."""
    doomed = WorkerProcess(env={}, threads=2).start()
    for job in range(2):
        flow_tasks.flow_hold.send("K", 120, job)
    wait_until(lambda: client().llen("flow:held") >= 2, timeout=60, what="both slots held")
    doomed.kill()
    killed_at = time.time()
    survivor = WorkerProcess(env={}, threads=2).start()
    try:
        flow_tasks.flow_hold.send("K", 0, 9)
        wait_until(lambda: any(run["job"] == 9 for run in notes("flow:held")), timeout=120, what="the job after")
    finally:
        survivor.stop()
    started = next(run["started"] for run in notes("flow:held") if run["job"] == 9)
    return {
        "freed_after": started - killed_at,
        "heartbeat_timeout": settings.DRAMATIQ_BROKER["OPTIONS"].get("heartbeat_timeout", 15_000) / 1000,
    }


def urgent(backlog: int = 10_000, sends: int = 20) -> dict:
    """With ``backlog`` jobs of 1 s in low and every unreserved thread busy, how soon urgent jobs start."""
    worker = WorkerProcess(env={"JOB_RESERVED_THREADS": "urgent=2"}, supervised=True, threads=8).start()
    try:
        worker.wait_for_log(r"Worker process is ready for action", count=2, timeout=60)
        for _ in range(backlog):
            flow_tasks.flow_slow.send(1.0)
        wait_until(lambda: int(client().get("flow:slow:started") or 0) >= 8, timeout=60, what="busy threads")
        for _ in range(sends):
            flow_tasks.flow_urgent.send(time.time())
            time.sleep(0.2)
        wait_until(lambda: client().llen("flow:urgent") >= sends, timeout=60, what="urgent jobs")
    finally:
        worker.stop(timeout=5)
    waits = [run["started"] - run["sent_at"] for run in notes("flow:urgent")]
    return {"p50": percentile(waits, 0.5), "p95": percentile(waits, 0.95)}


def idle(sends: int = 50, quiet: float = 10.0) -> dict:
    """An idle worker: the Redis commands it sends a second, and how soon a job sent to it starts."""
    broker = dramatiq.get_broker()
    worker = WorkerProcess(env={}, threads=8).start()
    try:
        time.sleep(3)
        before = broker.client.info("stats")["total_commands_processed"]
        time.sleep(quiet)
        after = broker.client.info("stats")["total_commands_processed"]
        for _ in range(sends):
            flow_tasks.flow_idle.send(time.time())
            time.sleep(0.2)
        wait_until(lambda: client().llen("flow:idle") >= sends, timeout=60, what="idle jobs")
    finally:
        worker.stop()
    waits = [run["started"] - run["sent_at"] for run in notes("flow:idle")]
    return {
        "commands_per_second": (after - before - 1) / quiet,
        "p50": percentile(waits, 0.5),
        "p95": percentile(waits, 0.95),
    }


def unlimited() -> dict:
    """The same jobs as ``pairs``, on the same workers, without the limit: the platform's own cost."""
    return pairs(actor=flow_tasks.flow_free)


CHECKS = {
    "unlimited": unlimited,
    "pairs": pairs,
    "rated": rated,
    "fair": fair,
    "killed": killed,
    "urgent": urgent,
    "idle": idle,
}

if __name__ == "__main__":
    client().flushdb()
    print(json.dumps(CHECKS[sys.argv[1]]()))
