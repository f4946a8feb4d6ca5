"""Scenario daily_report: one day's report in a year of orders beside raw SQL, and a year's backfill."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from bench import harness, report
from bench.harness import BASE_DIR, Options
from workers.testing import wait_until

DEFAULT_ORDERS = 1_000_000
#: The report's figures may take at most this many times the one raw SQL query's time.
TARGET_VS_RAW = 1.5
#: Timed runs of each query per round.
QUERY_RUNS = 20

METHOD = """\
A fresh database ({database}) gets {orders:,} orders spread evenly over the 365 days that ended
yesterday (Europe/Berlin), written in time order as a live shop writes them: one to three
items each from 1,000 products, a payment for each order that got that far (8% of all orders
are declined or fail), and a customer for every ten orders; then ANALYZE (VACUUM ANALYZE on
PostgreSQL, as autovacuum would have by then). The indexes are the project's migrations' own,
nothing is added for the bench.

- **One day**: in one process, the daily report's figures for a day in the middle of the year
  (`reports.selectors.report_daily_figures`: four ORM aggregate queries, results shaped as the
  stored JSON) and the one raw SQL statement that returns the same figures (`UNION ALL` of the
  four aggregates), taken in turns after a warm-up, {runs} times each; the median is shown, and
  both are checked to give the same figures.
- **Backfill**: a private redis-server and one `manage.py rundramatiq` worker (1 process,
  {threads} threads), then `manage.py backfill_reports --from FIRST --to LAST --force` for the
  365 days: one batch of 365 `generate_daily_report` jobs on the low queue, the command drawing
  its progress bar until the batch is finished. The time is the batch's own, from its creation
  to its last job's end (`Batch.created_at` to `finished_at`); the command's wall time, with
  Django's start and its half-second polling, is shown beside it. Median of {repeat} runs."""


def run(options: Options) -> None:
    orders = options.jobs or DEFAULT_ORDERS
    workdir = options.workdir
    var_dir = workdir / "report-var"
    env = harness.project_env(
        dict(os.environ), var_dir=var_dir, redis_url="redis://unused", scratch_database_name="bench_report"
    )
    stub_env = {**env, "BROKER_URL": "stub://"}
    harness.migrate(env, log_path=workdir / "report-migrate.log")

    print(f"seeding {orders:,} orders over a year ...", flush=True)
    started = time.perf_counter()
    seed = harness.run_json(
        [sys.executable, "-m", "bench.workloads.report_data", str(orders)],
        env=stub_env,
        log_path=workdir / "report-seed.log",
    )
    print(f"seeded in {time.perf_counter() - started:.0f} s: {seed['first']} to {seed['last']}", flush=True)
    first, last = date.fromisoformat(seed["first"]), date.fromisoformat(seed["last"])
    day = first + timedelta(days=182)

    queries = [
        harness.run_json(
            [sys.executable, "-m", "bench.workloads.report_query", day.isoformat(), str(QUERY_RUNS)],
            env=stub_env,
            log_path=workdir / "report-query.log",
        )
        for _ in range(options.repeat)
    ]
    for round_, result in enumerate(queries, start=1):
        print(
            f"round {round_}/{options.repeat} one day ({result['orders_on_day']:,} orders): report "
            f"{result['report_ms']:.2f} ms, raw SQL {result['raw_ms']:.2f} ms, same figures: {result['same_figures']}",
            flush=True,
        )

    backfills = []
    for round_ in range(1, options.repeat + 1):
        backfills.append(_backfill_once(options, env, first, last, workdir / f"report-backfill-{round_}"))
        span, wall = backfills[-1]
        print(f"round {round_}/{options.repeat} backfill 365 days: {span:.2f} s (command {wall:.2f} s)", flush=True)
    _report(options, orders, day, queries, backfills)


def _backfill_once(
    options: Options, env: dict[str, str], first: date, last: date, directory: Path
) -> tuple[float, float]:
    directory.mkdir(parents=True, exist_ok=True)
    with harness.private_redis(directory / "redis") as server:
        run_env = harness.project_env(env, var_dir=Path(env["VAR_DIR"]), redis_url=server.url)
        args = [sys.executable, "manage.py", "rundramatiq", "--processes", "1", "--threads", str(options.threads)]
        worker = harness.Worker(args, env=run_env, log_path=directory / "worker.log").start()
        try:
            wait_until(
                lambda: worker.check_alive() or "ready for action" in worker.log_tail(100_000),
                timeout=60,
                what="the worker to boot",
            )
            command = [sys.executable, "manage.py", "backfill_reports", "--from", str(first), "--to", str(last)]
            started = time.perf_counter()
            with open(directory / "backfill.log", "wb") as log:
                subprocess.run([*command, "--force"], cwd=BASE_DIR, env=run_env, stdout=log, stderr=log, check=True)
            wall = time.perf_counter() - started
        finally:
            worker.stop()
    done = (directory / "backfill.log").read_text()
    if "Done: 365 succeeded, 0 failed." not in done:
        raise RuntimeError(f"the backfill did not finish cleanly:\n{done[-2000:]}")
    return _batch_span(run_env, directory / "span.log"), wall


def _batch_span(env: dict[str, str], log_path: Path) -> float:
    code = (
        "import json; from workers.models import Batch; b = Batch.objects.latest('created_at'); "
        "print(json.dumps({'seconds': (b.finished_at - b.created_at).total_seconds()}))"
    )
    args = [sys.executable, "manage.py", "shell", "-v", "0", "-c", code]
    return harness.run_json(args, env={**env, "BROKER_URL": "stub://"}, log_path=log_path)["seconds"]


def _report(options: Options, orders: int, day: date, queries: list[dict], backfills: list[tuple]) -> None:
    report_ms = harness.median([q["report_ms"] for q in queries])
    raw_ms = harness.median([q["raw_ms"] for q in queries])
    same = all(q["same_figures"] for q in queries)
    ratio = report_ms / raw_ms
    span = harness.median([b[0] for b in backfills])
    wall = harness.median([b[1] for b in backfills])
    day_headers = ["one day", "orders that day", "ms (median)", "vs raw SQL"]
    day_rows = [
        [
            "daily report figures (4 ORM queries)",
            f"{queries[0]['orders_on_day']:,}",
            f"{report_ms:.2f}",
            f"{ratio:.2f}",
        ],
        ["one raw SQL aggregate query", f"{queries[0]['orders_on_day']:,}", f"{raw_ms:.2f}", "1.00"],
    ]
    target_headers = ["ratio", "measured", "target", "verdict"]
    targets = [
        [
            "report / raw SQL (time)",
            f"{ratio:.2f}",
            f"<= {TARGET_VS_RAW:g}",
            "met" if ratio <= TARGET_VS_RAW and same else "not met",
        ]
    ]
    backfill_headers = ["backfill", "days", "seconds (batch)", "reports/s", "command seconds"]
    backfill_rows = [["365 days through one worker", "365", f"{span:.2f}", f"{365 / span:.1f}", f"{wall:.2f}"]]
    print(
        "\n"
        + "\n\n".join(
            [
                report.table(day_headers, day_rows),
                report.table(target_headers, targets),
                report.table(backfill_headers, backfill_rows),
                f"same figures from both: {same}",
            ]
        ),
        flush=True,
    )
    if options.doc is None:
        return
    database = report.database_label()
    each = [
        ["one day: report ms", "  ".join(f"{q['report_ms']:.2f}" for q in queries)],
        ["one day: raw SQL ms", "  ".join(f"{q['raw_ms']:.2f}" for q in queries)],
        ["backfill: batch seconds", "  ".join(f"{b[0]:.2f}" for b in backfills)],
    ]
    method = METHOD.format(
        database=database, orders=orders, runs=QUERY_RUNS, threads=options.threads, repeat=options.repeat
    )
    body = "\n\n".join(
        [
            f"## daily_report: the daily report in {orders:,} orders over a year ({database.split()[0].rstrip(',')})",
            f"The day measured: {day.isoformat()}. Both gave the same figures: {'yes' if same else 'NO'}.",
            report.table(day_headers, day_rows, markdown=True),
            report.table(target_headers, targets, markdown=True),
            report.table(backfill_headers, backfill_rows, markdown=True),
            "How it is measured:\n\n" + method,
            "Each run:\n\n" + report.table(["figure", "runs"], each, markdown=True),
            report.machine_section(),
        ]
    )
    section = "daily_report" if database.startswith("SQLite") else "daily_report_postgresql"
    report.write_section(options.doc, section, body)
    print(f"\nsaved to {options.doc}", flush=True)
