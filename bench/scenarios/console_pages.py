"""Scenario console_pages: the history and metrics pages over 1,000,000 job runs, p95 load times (PostgreSQL)."""

from __future__ import annotations

import os
import sys

from bench import harness, report
from bench.harness import Options

DEFAULT_ROWS = 1_000_000
REPEAT = 40
#: Every page must load within this many milliseconds at p95.
TARGET_P95_MS = 300

METHOD = """\
A fresh PostgreSQL database gets {rows:,} job runs spread over the last 7 days (six actors, one
run in 20 failed with an error text) and 72 hours of per-minute metrics for six actors in two
worker processes, all with INSERT ... SELECT, then ANALYZE. One process loads each page {repeat}
times (after 3 loads not counted) through Django's test Client as a logged-in superuser: the
whole request, middleware, queries and template included, no network. DEBUG off."""


def run(options: Options) -> None:
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        print("console_pages needs DATABASE_URL set to a PostgreSQL server; skipped", flush=True)
        return
    rows = options.jobs or DEFAULT_ROWS
    directory = options.workdir / "console-pages"
    env = harness.project_env(
        dict(os.environ), var_dir=directory / "var", redis_url="redis://unused", scratch_database_name="bench_console"
    )
    env.update(BROKER_URL="stub://", ALLOWED_HOSTS="testserver")
    log = directory.with_suffix(".log")
    harness.migrate(env, log_path=log)
    workload = [sys.executable, "-m", "bench.workloads.console_pages"]
    seeded = harness.run_json([*workload, "seed", str(rows)], env=env, log_path=log)
    timed = harness.run_json([*workload, "time", str(REPEAT), seeded["message_id"]], env=env, log_path=log)
    headers = ["page", "p50 ms", "p95 ms", "target", "verdict"]
    table = [
        [
            name,
            f"{figures['p50']:.1f}",
            f"{figures['p95']:.1f}",
            f"<= {TARGET_P95_MS} ms p95",
            "met" if figures["p95"] <= TARGET_P95_MS else "not met",
        ]
        for name, figures in timed.items()
    ]
    print("\n" + report.table(headers, table), flush=True)
    if options.doc is None:
        return
    body = "\n\n".join(
        [
            f"## console_pages: the history and metrics pages over {rows:,} job runs",
            report.table(headers, table, markdown=True),
            "How it is measured:\n\n" + METHOD.format(rows=rows, repeat=REPEAT),
            report.machine_section(),
        ]
    )
    report.write_section(options.doc, "console_pages", body)
    print(f"\nsaved to {options.doc}", flush=True)
