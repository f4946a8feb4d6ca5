"""Scenario keyset: walk every order in chunks of 1,000 by keyset and by offset, at two table sizes."""

from __future__ import annotations

import os
import sys

from bench import harness, report
from bench.harness import Options

DEFAULT_ROWS = 1_000_000
METHODS = (
    ("keyset", "keyset (id > last ORDER BY id LIMIT 1000)"),
    ("offset", "offset (ORDER BY id OFFSET n LIMIT 1000)"),
)

METHOD = """\
A fresh database ({database}) gets the orders with one INSERT ... SELECT, then ANALYZE. One
process walks every order id in chunks of 1,000, as `process_price_batch` and `process_large_dataset`
split their work: by keyset (`workers.keyset.keyset_page`, the primary key's index) or by offset
(Django slicing, `OFFSET n LIMIT 1000`). The walk is done at a quarter of the size and at the
full size: keyset time grows with the rows (linear), offset time with their square (each chunk
reads and throws away every row before it). First and last chunk times show why. One run each."""


def run(options: Options) -> None:
    full = options.jobs or DEFAULT_ROWS
    rows = []
    for size in (full // 4, full):
        directory = options.workdir / f"keyset-{size}"
        env = harness.project_env(
            dict(os.environ),
            var_dir=directory / "var",
            redis_url="redis://unused",
            scratch_database_name="bench_keyset",
        )
        env["BROKER_URL"] = "stub://"
        harness.migrate(env, log_path=directory.with_suffix(".log"))
        workload = [sys.executable, "-m", "bench.workloads.keyset"]
        harness.run_json([*workload, "seed", str(size)], env=env, log_path=directory.with_suffix(".log"))
        for method, label in METHODS:
            result = harness.run_json([*workload, "walk", method], env=env, log_path=directory.with_suffix(".log"))
            if result["rows"] != size:
                raise RuntimeError(f"{method} walked {result['rows']} rows of {size}")
            print(f"{label}, {size:,} rows: {result['seconds']:.2f} s", flush=True)
            rows.append(
                [
                    label,
                    f"{size:,}",
                    f"{result['seconds']:.2f}",
                    f"{size / result['seconds']:,.0f}",
                    f"{result['first_chunk_ms']:.2f}",
                    f"{result['last_chunk_ms']:.2f}",
                ]
            )
    growth = [[label, f"{float(rows[i + 2][2]) / float(rows[i][2]):.1f}x"] for i, (_, label) in enumerate(METHODS)]
    headers = ["walk", "rows", "seconds", "rows/s", "first chunk ms", "last chunk ms"]
    growth_headers = ["walk", "time at 4x the rows"]
    print("\n" + report.table(headers, rows) + "\n\n" + report.table(growth_headers, growth), flush=True)
    if options.doc is None:
        return
    database = report.database_label()
    body = "\n\n".join(
        [
            f"## keyset: splitting {full:,} orders into chunks, keyset beside offset",
            report.table(headers, rows, markdown=True),
            report.table(growth_headers, growth, markdown=True),
            "How it is measured:\n\n" + METHOD.format(database=database),
            report.machine_section(),
        ]
    )
    report.write_section(options.doc, "keyset", body)
