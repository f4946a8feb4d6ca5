"""Scenario console_pages: every console page over 1,000,000 job runs, 100,000 dead letters and 100,000 queued jobs,
p95 load times (PostgreSQL and Redis)."""

from __future__ import annotations

import os
import sys

from bench import harness, report
from bench.harness import Options
from bench.workloads.console_pages import COMPACTION

DEFAULT_ROWS = 1_000_000
DEAD_LETTERS = 100_000
QUEUED = 100_000
REPEAT = 40
#: Every page must load within this many milliseconds at p95.
TARGET_P95_MS = 300

METHOD = """\
A fresh PostgreSQL database gets {rows:,} job runs spread over the last 7 days (six actors, one
run in 20 failed with an error text), 72 hours of per-minute metrics for six actors in two
worker processes and {dead:,} dead letters over 30 days (a tenth resolved, a fifth replayed), all
with INSERT ... SELECT, then ANALYZE. A private redis-server gets {queued:,} jobs across the four
queues by weight, sent with `enqueue_many`: 60% ready, 40% delayed by a minute to a day (one in
ten retrying), a quarter of the delayed ones moved into the delay-queue ack set of a worker that
beats (its Dramatiq heartbeat and its presence, 8 jobs running, refreshed before every load). One
process loads each page {repeat} times (after 3 loads not counted) through Django's test Client as
a logged-in superuser: the whole request, middleware, queries, Redis reads and template included,
no network. DEBUG off."""


def run(options: Options) -> None:
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        print("console_pages needs DATABASE_URL set to a PostgreSQL server; skipped", flush=True)
        return
    rows = options.jobs or DEFAULT_ROWS
    directory = options.workdir / "console-pages"
    directory.mkdir(parents=True, exist_ok=True)
    with harness.private_redis(directory / "redis") as server:
        env = harness.project_env(
            dict(os.environ), var_dir=directory / "var", redis_url=server.url, scratch_database_name="bench_console"
        )
        env.update(ALLOWED_HOSTS="testserver")
        log = directory.with_suffix(".log")
        harness.migrate(env, log_path=log)
        workload = [sys.executable, "-m", "bench.workloads.console_pages"]
        seeded = harness.run_json([*workload, "seed", str(rows), str(DEAD_LETTERS), str(QUEUED)], env=env, log_path=log)
        timed = harness.run_json([*workload, "time", str(REPEAT), seeded["message_id"]], env=env, log_path=log)
    compaction = timed.pop(COMPACTION)
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
    merged = (
        f"Minute rows of the 72 h metrics: {compaction['rows before']:,} as two processes wrote them, "
        f"{compaction['rows after']:,} once housekeeping merged the closed ones (across processes after an hour, "
        f"into 5-minute rows after a day; {compaction['seconds']:.1f} s for all 72 hours at once). The first "
        "metrics line is read before that, the others after."
    )
    print("\n" + report.table(headers, table) + "\n\n" + merged, flush=True)
    if options.doc is None:
        return
    body = "\n\n".join(
        [
            f"## console_pages: every console page over {rows:,} job runs, {DEAD_LETTERS:,} dead letters"
            f" and {QUEUED:,} queued jobs",
            report.table(headers, table, markdown=True),
            merged,
            "How it is measured:\n\n" + METHOD.format(rows=rows, repeat=REPEAT, dead=DEAD_LETTERS, queued=QUEUED),
            report.machine_section(),
        ]
    )
    report.write_section(options.doc, "console_pages", body)
    print(f"\nsaved to {options.doc}", flush=True)
