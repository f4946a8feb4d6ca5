"""Scenario flow_control: per-key limits, fairness between keys and reserved capacity, at the issue's sizes."""

from __future__ import annotations

import os
import sys

from bench import harness, report
from bench.harness import Options

METHOD = """\
One private redis-server and the project's settings (DEBUG off, heartbeat timeout 15 s, every
other setting at its default) on {database}; each check runs whole in a helper process
(`bench/workloads/flow.py`) that starts real `rundramatiq` workers (or `runworkers`), sends
the jobs through the project's broker, and reads back the start and end each job noted in Redis.

- Concurrency: 2 processes x 8 threads, 1,000 jobs of 50 ms over 10 keys limited to 2 running
  each. The ideal time is the jobs' work over the slots that can run at once (16 threads); the
  same jobs of an actor without the limit, on the same workers, show what the platform itself
  costs (every job's middleware round trips, on two cores shared with Redis and the sender).
- Rate: 60 a minute on one key, with more jobs queued than 3 minutes let start; starts counted
  over the 3 minutes from the first; the busiest window is the most starts within any 60 s.
- Fairness: one worker of 4 threads; key A queues 10,000 jobs of 50 ms, then key B queues 10
  (both limited to 2 running); the wait is from each of B's sends to its start.
- Killed worker: a worker holding both slots of a key with jobs of 2 minutes is SIGKILLed; the
  clock runs from the kill to the start, on another worker, of a job of that key.
- Urgent: `runworkers` of 1 x 8 threads with `JOB_RESERVED_THREADS=urgent=2`; 10,000 jobs of
  1 s wait in `low` and every unreserved thread is busy; 20 urgent jobs are sent 0.2 s apart.
- Idle: one idle worker (1 x 8); Redis commands per second over 10 s of idleness, then 50 jobs
  sent 0.2 s apart, each timed from its send to its start."""


def run(options: Options) -> None:
    directory = options.workdir / "flow_control"
    with harness.private_redis(directory / "redis") as server:
        env = harness.project_env(
            dict(os.environ), var_dir=directory / "var", redis_url=server.url, scratch_database_name="bench_flow"
        )
        env["BENCH_REDIS_URL"] = server.url
        harness.migrate(env, log_path=directory.with_suffix(".migrate.log"))
        figures = {}
        for check in ("unlimited", "pairs", "fair", "killed", "urgent", "idle", "rated"):
            print(f"  {check}...", flush=True)
            args = [sys.executable, "-m", "bench.workloads.flow", check]
            figures[check] = harness.run_json(args, env=env, log_path=directory.with_suffix(f".{check}.log"))
    harness.drop_scratch_databases()
    rows = _rows(figures)
    headers = ["check", "measured", "target", "verdict"]
    print("\n" + report.table(headers, rows))
    if options.doc is not None:
        body = "\n\n".join(
            [
                "## flow_control: per-key limits, fair lanes, reserved capacity",
                report.table(headers, rows, markdown=True),
                "How it is measured:\n\n" + METHOD.format(database=report.database_label()),
                report.machine_section(),
            ]
        )
        report.write_section(options.doc, "flow_control", body)


def _verdict(met: bool) -> str:
    return "met" if met else "not met"


def _rows(figures: dict) -> list[list[str]]:
    pairs, rated, fair = figures["pairs"], figures["rated"], figures["fair"]
    killed, urgent, idle = figures["killed"], figures["urgent"], figures["idle"]
    ratio = pairs["span"] / pairs["ideal"]
    unlimited = figures["unlimited"]["span"] / figures["unlimited"]["ideal"]
    freed_limit = killed["heartbeat_timeout"] + 5
    return [
        ["largest overlap per key (limit 2)", str(pairs["overlap"]), "<= 2", _verdict(pairs["overlap"] <= 2)],
        [
            "1,000 jobs of 50 ms: time / ideal",
            f"{pairs['span']:.2f} s / {pairs['ideal']:.2f} s = {ratio:.2f}x",
            "<= 1.15x",
            _verdict(ratio <= 1.15),
        ],
        [
            "the same jobs unlimited: time / ideal; limited / unlimited",
            f"{unlimited:.2f}x; {ratio / unlimited:.2f}x",
            "(reference)",
            "",
        ],
        [
            "retries spent, dead letters (concurrency)",
            f"{pairs['retries']}, {pairs['dead']} ({pairs['deferrals']} deferrals)",
            "0, 0",
            _verdict(pairs["retries"] == 0 and pairs["dead"] == 0),
        ],
        ["busiest 60 s window (60/m)", str(rated["busiest_window"]), "<= 60", _verdict(rated["busiest_window"] <= 60)],
        ["rate used over 3 minutes", f"{rated['used']:.1%}", ">= 95%", _verdict(rated["used"] >= 0.95)],
        [
            "B's 10 jobs behind A's 10,000: wait p50 / p95",
            f"{fair['p50'] * 1000:.0f} / {fair['p95'] * 1000:.0f} ms",
            "p95 <= 2 s",
            _verdict(fair["p95"] <= 2),
        ],
        [
            "slots of a SIGKILLed worker free again",
            f"{killed['freed_after']:.1f} s",
            f"<= {freed_limit:.0f} s",
            _verdict(killed["freed_after"] <= freed_limit),
        ],
        [
            "urgent start, every unreserved thread busy: p50 / p95",
            f"{urgent['p50'] * 1000:.0f} / {urgent['p95'] * 1000:.0f} ms",
            "p95 <= 50 ms",
            _verdict(urgent["p95"] <= 0.05),
        ],
        [
            "idle worker: send to start p50 / p95",
            f"{idle['p50'] * 1000:.0f} / {idle['p95'] * 1000:.0f} ms",
            "p95 <= 20 ms",
            _verdict(idle["p95"] <= 0.02),
        ],
        [
            "idle worker: Redis commands a second (with those inside scripts)",
            f"{idle['commands_per_second']:.1f}",
            "a few (<= 3)",
            _verdict(idle["commands_per_second"] <= 3),
        ],
    ]
