"""Scenario orders: orders processed end to end (reserve, pay, mail) through real workers."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bench import harness, report
from bench.harness import Options

DEFAULT_ORDERS = 10_000
PROCESSES = 2

METHOD = """\
A fresh database ({database}) gets {orders:,} pending orders of two products each (200
products, a customer per ten orders, every twentieth customer a priority one), all paid with
the sandbox token `tok_ok`. A private redis-server and `manage.py rundramatiq --processes
{processes} --threads {threads}` run as in production (DEBUG off, INFO logs to a file, e-mail
through Django's dummy backend). Then one call of `order_queue_processing` queues every order
in one transaction (through the outbox, as the admin action does), and each order goes
`process_order` (stock reserved under row locks, payment created) -> `process_payment` (sandbox
gateway, ledger row) -> `send_mail` (confirmation). Time runs from the start of the queueing
call to the last confirmation mail sent; latency is each order's `processed_at` minus the start
of the queueing call, so under this burst it includes the wait behind the orders queued before
it. Median of {repeat} runs."""


def run(options: Options) -> None:
    orders = options.jobs or DEFAULT_ORDERS
    runs = [_run_once(orders, options, round_) for round_ in range(1, options.repeat + 1)]
    _report(runs, orders, options)


def _run_once(orders: int, options: Options, round_: int) -> dict:
    directory = options.workdir / f"orders-{round_}"
    var_dir = directory / "var"
    var_dir.mkdir(parents=True)
    env = harness.project_env(
        dict(os.environ), var_dir=var_dir, redis_url="redis://unused", scratch_database_name="bench_orders"
    )
    env["EMAIL_BACKEND"] = "django.core.mail.backends.dummy.EmailBackend"
    harness.migrate(env, log_path=directory / "migrate.log")
    workload = [sys.executable, "-m", "bench.workloads.orders"]
    harness.run_json(
        [*workload, "seed", str(orders)], env={**env, "BROKER_URL": "stub://"}, log_path=directory / "seed.log"
    )
    with harness.private_redis(directory / "redis") as server:
        env["REDIS_URL"] = server.url
        args = [
            sys.executable,
            "manage.py",
            "rundramatiq",
            "--processes",
            str(PROCESSES),
            "--threads",
            str(options.threads),
        ]
        worker = harness.Worker(args, env=env, log_path=directory / "worker.log").start()
        try:
            queued = harness.run_json([*workload, "queue"], env=env, log_path=directory / "queue.log")
            result = harness.run_json(
                [*workload, "wait", str(orders), str(queued["t_start"])], env=env, log_path=directory / "wait.log"
            )
        finally:
            worker.stop()
    print(
        f"round {round_}/{options.repeat}: {orders / result['seconds']:,.0f} orders/s, "
        f"p50 {result['p50']:.2f} s, p95 {result['p95']:.2f} s, "
        f"charged {result['charged']:,}, mails {result['mails']:,}",
        flush=True,
    )
    return result


def _report(runs: list[dict], orders: int, options: Options) -> None:
    seconds = harness.median([r["seconds"] for r in runs])
    headers = ["orders", "seconds", "orders/s", "p50 latency s", "p95 latency s", "charged", "mails sent"]
    rows = [
        [
            f"{orders:,}",
            f"{seconds:.1f}",
            f"{orders / seconds:,.0f}",
            f"{harness.median([r['p50'] for r in runs]):.2f}",
            f"{harness.median([r['p95'] for r in runs]):.2f}",
            f"{min(r['charged'] for r in runs):,}",
            f"{min(r['mails'] for r in runs):,}",
        ]
    ]
    print("\n" + report.table(headers, rows), flush=True)
    if options.doc is None:
        return
    database = report.database_label()
    body = "\n\n".join(
        [
            f"## orders: {orders:,} orders end to end through real workers",
            report.table(headers, rows, markdown=True),
            "How it is measured:\n\n"
            + METHOD.format(
                database=database, orders=orders, processes=PROCESSES, threads=options.threads, repeat=options.repeat
            ),
            report.machine_section(),
        ]
    )
    report.write_section(options.doc, "orders", body)
    print(f"\nsaved to {Path(options.doc)}", flush=True)
