"""Scenario imports: a products CSV through the import, beside PostgreSQL COPY and per-row update_or_create."""

from __future__ import annotations

import os
import sys

from bench import harness, report
from bench.harness import Options

DEFAULT_ROWS = 1_000_000
#: update_or_create takes a round trip or two per row: a sample of this many rows is enough.
NAIVE_ROWS = 20_000
#: The import should load at least half as many rows a second as COPY does.
TARGET_VS_COPY = 0.5
#: Writing an audit row for every stock changed should cost the import at most a tenth of its rate.
TARGET_AUDITED = 0.9
DATABASE = "bench_imports"

METHOD = """\
A generated products CSV of {rows:,} rows ({megabytes:.1f} MB: sku, name, price, stock; every
tenth name quoted with a comma in it) is loaded into the products table of a private PostgreSQL
database (`{database}`, created for the run and dropped after it), each way in a process of its
own with the project's production settings (DEBUG off), starting from an empty table:

- **import**: `orders.services.imports.import_run`, as the `import_data` job runs it: the file
  read once to check it and count its rows, then read again and checked row by row in a
  thread of its own, a chunk ahead of the writing, and upserted in chunks of {chunk:,} rows
  (COPY into a temporary table, then one `INSERT ... ON CONFLICT DO UPDATE`), each chunk in a
  transaction with the import's counters and resume point. Run twice: into the empty table
  (every product new), then again (every product exists), then as a dry run, which reads and
  checks every row and writes no product: what the import costs before the database; before
  the second and third passes, a VACUUM ANALYZE of what the pass before wrote and a CHECKPOINT
  (not timed), so that no pass pays for the autovacuum of another's rows or the checkpoint
  their WAL called for. Peak
  memory is the process's `ru_maxrss`. Every product whose stock the file changes (every new
  one) gets its `InventoryAudit` row in the same statement as the upsert; a row that would
  leave its product as it was is not written again (the second pass writes no product).
- **import without audit rows**: the same import with its upsert statement stripped of the
  audit rows (the COPY into the staging table and the `INSERT ... ON CONFLICT`, which leaves
  alone the rows that change nothing, only), as imports were before every stock change had its
  audit: what the audit rows cost, side by side. The two imports take turns at going first in
  each round. Each method starts from empty products and audit tables.
- **COPY**: `COPY orders_product (sku, name, price, stock) FROM STDIN (FORMAT csv, HEADER)` of
  the file in 1 MB blocks through psycopg's `cursor.copy`, `updated_at` from a column default
  set for it: the fastest way in, with no checks and no upsert.
- **COPY + upsert**: COPY into a temporary table, then one `INSERT ... SELECT ... ON CONFLICT
  (sku) DO UPDATE`: the import's effect in SQL, without its per-row messages. Run twice like the
  import.
- **update_or_create**: a loop of `Product.objects.update_or_create` over the first {naive:,}
  rows, as a first attempt would do it; its rows per second stand for the whole file.

Median of {repeat} run(s) of each."""

AUDIT_COST = """\
Where the audit rows' time goes (EXPLAIN ANALYZE of chunks of 20,000 products, on the machine
below, loaded by others): the upsert of 20,000 new products takes 100 to 110 ms; writing their
audit rows in the same statement adds 50 to 110 ms, the heap (30 to 50 ms) and two indexes, the
primary key and the product's. That is all they cost now: the order's index and the unique key's
are partial, and import rows, which have neither, skip them; there is no LIKE index on the key;
neither the product nor the order is a foreign key in the database, so no check is queued per
row for the commit (it was 90 to 130 ms a chunk for the product, about 11 ms for the NULL
order); and a new product's previous stock is zero without a lookup. An existing product costs
one probe of the products' primary key for the stock it had, and only if the file changes it: a
row that changes nothing is not written again, audited or not (both imports skip it). Before,
the audit rows took the import to 0.42 of its rate: five indexes (80 ms), the lookup of every
product's stock by sku (35 ms) and the foreign-key checks."""


def run(options: Options) -> None:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        print("skipped: this scenario compares with PostgreSQL's COPY; set DATABASE_URL=postgres://...", flush=True)
        return
    rows = options.jobs or DEFAULT_ROWS
    directory = options.workdir / "imports"
    directory.mkdir(parents=True)
    csv_path = directory / "products.csv"
    workload = [sys.executable, "-m", "bench.workloads.product_import"]
    generated = harness.run_json(
        [*workload, "generate", str(csv_path), str(rows)], env=dict(os.environ), log_path=directory / "generate.log"
    )
    print(f"generated {rows:,} rows, {generated['bytes'] / 1e6:.1f} MB", flush=True)

    env = harness.project_env(
        dict(os.environ), var_dir=directory / "var", redis_url="redis://unused", scratch_database_name=DATABASE
    )
    env["BROKER_URL"] = "stub://"
    harness.migrate(env, log_path=directory / "migrate.log")
    runs = []
    for round_ in range(1, options.repeat + 1):
        results = {}
        # The two imports alternate which goes first, so that neither always follows the other.
        imports = ("project", "unaudited") if round_ % 2 else ("unaudited", "project")
        for method in (*imports, "copy", "copy-upsert", "naive"):
            args = [*workload, method, str(csv_path), str(min(rows, NAIVE_ROWS))]
            results[method] = harness.run_json(args, env=env, log_path=directory / f"{method}.log")
        runs.append(results)
        _print_round(round_, options.repeat, results)
    _report(options, rows, generated["bytes"], runs)


def _rate(result: dict) -> float:
    return result["rows"] / result["seconds"]


def _print_round(round_: int, repeat: int, results: dict) -> None:
    project = results["project"]
    print(
        f"round {round_}/{repeat}: import {_rate(project['new']):,.0f} rows/s new, "
        f"{_rate(project['existing']):,.0f} existing (peak {project['new']['peak_rss_mb']:.0f} MB); "
        f"without audit rows {_rate(results['unaudited']['new']):,.0f} new, "
        f"{_rate(results['unaudited']['existing']):,.0f} existing; "
        f"COPY {_rate(results['copy']['new']):,.0f}; COPY + upsert {_rate(results['copy-upsert']['new']):,.0f} new, "
        f"{_rate(results['copy-upsert']['existing']):,.0f} existing; "
        f"update_or_create {_rate(results['naive']['new']):,.0f}",
        flush=True,
    )


def _report(options: Options, rows: int, size: int, runs: list[dict]) -> None:
    def median_rate(method: str, kind: str = "new") -> float:
        return harness.median([_rate(run[method][kind]) for run in runs])

    def median_seconds(method: str, kind: str = "new") -> float:
        return harness.median([run[method][kind]["seconds"] for run in runs])

    def vacuumed(method: str) -> float:
        return harness.median([run[method]["existing"]["vacuum_seconds_before"] for run in runs])

    imported, imported_again = median_rate("project"), median_rate("project", "existing")
    copied, upserted, upserted_again = (
        median_rate("copy"),
        median_rate("copy-upsert"),
        median_rate("copy-upsert", "existing"),
    )
    naive = median_rate("naive")
    unaudited, unaudited_again = median_rate("unaudited"), median_rate("unaudited", "existing")
    audited_ratio = harness.median([_rate(run["project"]["new"]) / _rate(run["unaudited"]["new"]) for run in runs])
    audited_ratio_again = harness.median(
        [_rate(run["project"]["existing"]) / _rate(run["unaudited"]["existing"]) for run in runs]
    )
    naive_rows = runs[0]["naive"]["new"]["rows"]
    peak = max(run["project"][kind]["peak_rss_mb"] for run in runs for kind in ("new", "existing"))
    before = runs[0]["project"]["new"]["peak_rss_mb_before"]
    checked = median_rate("project", "dry")
    counts_right = all(
        (run["project"]["new"]["created"], run["project"]["existing"]["updated"]) == (rows, rows) for run in runs
    )

    headers = ["load", "rows", "seconds (median)", "rows/s", "import ÷ this (same products)"]
    table_rows = [
        ["import, new products", rows, median_seconds("project"), imported, 1.0],
        ["import, existing products", rows, median_seconds("project", "existing"), imported_again, 1.0],
        ["import without audit rows, new", rows, median_seconds("unaudited"), unaudited, imported / unaudited],
        [
            "import without audit rows, existing",
            rows,
            median_seconds("unaudited", "existing"),
            unaudited_again,
            imported_again / unaudited_again,
        ],
        ["COPY into products", rows, median_seconds("copy"), copied, imported / copied],
        ["COPY + upsert, new products", rows, median_seconds("copy-upsert"), upserted, imported / upserted],
        [
            "COPY + upsert, existing products",
            rows,
            median_seconds("copy-upsert", "existing"),
            upserted_again,
            imported_again / upserted_again,
        ],
        ["update_or_create per row", naive_rows, median_seconds("naive"), naive, imported / naive],
    ]
    shown = [
        [name, f"{n:,}", f"{seconds:.2f}", f"{rate:,.0f}", f"{ratio:.2f}"]
        for name, n, seconds, rate, ratio in table_rows
    ]
    ratio = imported / copied
    target_headers = ["ratio", "measured", "target", "verdict"]
    targets = [
        [
            "import / COPY (rows/s)",
            f"{ratio:.2f}",
            f">= {TARGET_VS_COPY:g}",
            "met" if ratio >= TARGET_VS_COPY else "not met",
        ],
        [
            "audited / unaudited import, new products (rows/s)",
            f"{audited_ratio:.2f}",
            f">= {TARGET_AUDITED:g}",
            "met" if audited_ratio >= TARGET_AUDITED else "not met",
        ],
        [
            "audited / unaudited import, existing products (rows/s)",
            f"{audited_ratio_again:.2f}",
            f">= {TARGET_AUDITED:g}",
            "met" if audited_ratio_again >= TARGET_AUDITED else "not met",
        ],
        ["import / update_or_create (rows/s)", f"{imported / naive:.1f}", "", ""],
    ]
    memory = (
        f"Peak memory of the import process: {peak:.0f} MB ({before:.0f} MB before the import started). "
        f"Counts exact in every run (all {rows:,} created, then all updated): {'yes' if counts_right else 'NO'}. "
        f"Reading and checking alone (a dry run) goes at {checked:,.0f} rows/s, {checked / copied:.2f} of COPY's "
        f"rate; the import overlaps it with the writing, and goes at {imported / upserted:.2f} of the rate of "
        "COPY + upsert, its writes in pure SQL, which is itself "
        f"{upserted / copied:.2f} of COPY's. The VACUUM ANALYZE and CHECKPOINT after the new products (not timed) took "
        f"{vacuumed('project'):.1f} s with their audit rows, {vacuumed('unaudited'):.1f} s without."
    )
    print("\n" + "\n\n".join([report.table(headers, shown), report.table(target_headers, targets), memory]), flush=True)
    if options.doc is None:
        return
    method = METHOD.format(
        rows=rows,
        megabytes=size / 1e6,
        database=DATABASE,
        chunk=runs[0]["project"]["new"]["chunk_rows"],
        naive=naive_rows,
        repeat=options.repeat,
    )
    each = [
        [f"{method_} {kind}: rows/s", "  ".join(f"{_rate(run[method_][kind]):,.0f}" for run in runs)]
        for method_, kinds in (
            ("project", ("new", "existing", "dry")),
            ("unaudited", ("new", "existing")),
            ("copy", ("new",)),
            ("copy-upsert", ("new", "existing")),
        )
        for kind in kinds
    ]
    body = "\n\n".join(
        [
            f"## imports: a products CSV of {rows:,} rows (PostgreSQL)",
            report.table(headers, shown, markdown=True),
            report.table(target_headers, targets, markdown=True),
            memory,
            AUDIT_COST,
            "How it is measured:\n\n" + method,
            "Each run:\n\n" + report.table(["figure", "runs"], each, markdown=True),
            "Machine:\n\n" + "\n".join(f"- {key}: {value}" for key, value in report.machine_info().items()),
        ]
    )
    report.write_section(options.doc, "imports", body)
    print(f"\nsaved to {options.doc}", flush=True)
