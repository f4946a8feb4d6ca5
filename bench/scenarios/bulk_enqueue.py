"""Scenario bulk_enqueue: 100,000 messages sent one by one beside one ``enqueue_many`` call."""

from __future__ import annotations

import os
import sys

from bench import harness, report
from bench.harness import Options

DEFAULT_JOBS = 100_000
#: Bulk must send at least this many times faster than one-by-one.
TARGET = 10.0
MODES = (("one", "one by one (broker.enqueue per message)"), ("bulk", "bulk (workers.bulk.enqueue_many)"))

METHOD = """\
Each run gets a fresh private redis-server (append-only, synced every second) and a process of
its own with the project's settings (the full DRAMATIQ_BROKER middleware list, so every message
passes the same before/after enqueue hooks either way). The messages of the bench app's no-op
actor are built first; the clock covers only the sends: {jobs:,} calls of `broker.enqueue`, or
one call of `enqueue_many` (pipelined round trips of {chunk:,} messages, each chunk in one
MULTI/EXEC). Every run checks that the queue then holds exactly {jobs:,} messages. Modes take
turns; median of {repeat} runs."""


def run(options: Options) -> None:
    from workers.bulk import CHUNK_SIZE

    jobs = options.jobs or DEFAULT_JOBS
    seconds: dict[str, list[float]] = {mode: [] for mode, _ in MODES}
    for round_ in range(1, options.repeat + 1):
        for mode, _ in MODES:
            directory = options.workdir / f"bulk-{mode}-{round_}"
            with harness.private_redis(directory / "redis") as server:
                env = harness.project_env(dict(os.environ), var_dir=directory / "var", redis_url=server.url)
                result = harness.run_json(
                    [sys.executable, "-m", "bench.workloads.bulk_enqueue", mode, str(jobs)],
                    env=env,
                    log_path=directory.with_suffix(".log"),
                )
            if result["queued"] != jobs:
                raise RuntimeError(f"{mode}: {result['queued']} messages queued, expected {jobs}")
            seconds[mode].append(result["seconds"])
            print(f"round {round_}/{options.repeat} {mode}: {jobs / result['seconds']:,.0f} messages/s", flush=True)

    medians = {mode: harness.median(values) for mode, values in seconds.items()}
    ratio = medians["one"] / medians["bulk"]
    headers = ["sending", "messages", "seconds", "messages/s", "vs one by one"]
    rows = [
        [
            label,
            f"{jobs:,}",
            f"{medians[mode]:.2f}",
            f"{jobs / medians[mode]:,.0f}",
            f"{medians['one'] / medians[mode]:.1f}",
        ]
        for mode, label in MODES
    ]
    verdict = [
        ["bulk / one by one (rate)", f"{ratio:.1f}", f">= {TARGET:.0f}", "met" if ratio >= TARGET else "not met"]
    ]
    print(
        "\n" + report.table(headers, rows) + "\n\n" + report.table(["ratio", "measured", "target", "verdict"], verdict)
    )
    if options.doc is None:
        return
    each = [[label, "  ".join(f"{value:.2f}" for value in seconds[mode])] for mode, label in MODES]
    body = "\n\n".join(
        [
            f"## bulk_enqueue: {jobs:,} messages, one by one and in bulk",
            report.table(headers, rows, markdown=True),
            report.table(["ratio", "measured", "target", "verdict"], verdict, markdown=True),
            "How it is measured:\n\n" + METHOD.format(jobs=jobs, chunk=CHUNK_SIZE, repeat=options.repeat),
            "Each run (seconds):\n\n" + report.table(["sending", "runs"], each, markdown=True),
            report.machine_section(),
        ]
    )
    report.write_section(options.doc, "bulk_enqueue", body)
