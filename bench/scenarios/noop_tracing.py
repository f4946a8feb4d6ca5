"""Scenario noop_tracing: the no-op jobs of scenario noop through the project stack with OpenTelemetry off and on."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from bench import harness, report
from bench.harness import Options
from bench.scenarios import noop
from bench.scenarios.noop_history import ProjectStack

DEFAULT_JOBS = 20_000
#: With tracing on, the stack must keep this share of its rate with tracing off.
TARGET = 0.95

METHOD = """\
As scenario noop's "project stack" (a fresh private Redis per run, all jobs enqueued first,
then one `manage.py rundramatiq` of 1 process x {threads} threads; processing time from the
first job's start to the last one's end), run with the OTEL_* variables unset (tracing off)
and with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at a local OTLP/HTTP receiver
(`workers.otlp_sink`, a thread of the bench process on 127.0.0.1 that parses each export and
counts its spans). With tracing on, each job is a CONSUMER span and its Redis calls are its
child spans, batched and sent as protobuf over HTTP by the SDK's BatchSpanProcessor (default
settings: every 5 s or 512 spans); the worker's own Redis polling and bookkeeping are not
traced. Runs take turns; figures are medians of {repeat} runs. Database: {database}."""

SYSTEMS = (
    ProjectStack("off", "tracing off", "bench.app.tasks", django=True),
    ProjectStack("on", "tracing on (OTLP/HTTP)", "bench.app.tasks", django=True),
)


def run(options: Options) -> None:
    from workers.otlp_sink import OtlpSink

    jobs = options.jobs or DEFAULT_JOBS
    var_dir = options.workdir / "noop-tracing-var"
    setup_env = harness.project_env(
        _untraced(os.environ), var_dir=var_dir, redis_url="redis://unused", scratch_database_name="bench_noop_tracing"
    )
    harness.migrate(setup_env, log_path=options.workdir / "noop-tracing-migrate.log")
    work: dict[str, list[float]] = {system.key: [] for system in SYSTEMS}
    cpu: dict[str, list[float]] = {system.key: [] for system in SYSTEMS}
    exported: list[int] = []
    with OtlpSink(keep=False) as sink:
        for round_ in range(1, options.repeat + 1):
            for system in SYSTEMS:
                before = sink.received
                with _tracing(sink.url if system.key == "on" else None):
                    _, work_s, cpu_us, _ = noop._run_once(system, jobs, options, round_, setup_env)
                work[system.key].append(work_s)
                cpu[system.key].append(cpu_us)
                spans = sink.received - before
                if system.key == "on":
                    exported.append(spans)
                print(
                    f"round {round_}/{options.repeat} {system.label:<24} {work_s:6.2f} s = {jobs / work_s:>6,.0f} "
                    f"jobs/s   worker CPU {cpu_us:5.0f} us/job   spans exported {spans:,}",
                    flush=True,
                )
    _report(jobs, options, work, cpu, exported)


def _report(
    jobs: int, options: Options, work: dict[str, list[float]], cpu: dict[str, list[float]], exported: list[int]
) -> None:
    rate = {key: jobs / harness.median(values) for key, values in work.items()}
    headers = ["system", "jobs", "seconds", "jobs/s", "worker CPU us/job", "spans exported per run", "each run (s)"]
    rows = [
        [
            system.label,
            f"{jobs:,}",
            f"{harness.median(work[system.key]):.2f}",
            f"{rate[system.key]:,.0f}",
            f"{harness.median(cpu[system.key]):,.0f}",
            "  ".join(f"{spans:,}" for spans in exported) if system.key == "on" else "0",
            "  ".join(f"{value:.2f}" for value in work[system.key]),
        ]
        for system in SYSTEMS
    ]
    ratio = rate["on"] / rate["off"]
    cpu_ratio = harness.median(cpu["on"]) / harness.median(cpu["off"])
    target_headers = ["ratio", "measured", "target", "verdict"]
    targets = [
        ["tracing on / off (jobs/s)", f"{ratio:.3f}", f">= {TARGET:g}", "met" if ratio >= TARGET else "not met"],
        ["tracing on / off (worker CPU per job)", f"{cpu_ratio:.3f}", "(shown, no target)", ""],
    ]
    print("\n" + report.table(headers, rows) + "\n\n" + report.table(target_headers, targets), flush=True)
    if options.doc is None:
        return
    database = report.database_label()
    body = "\n\n".join(
        [
            f"## noop_tracing: {jobs:,} no-op jobs with OpenTelemetry tracing off and on",
            report.table(headers, rows, markdown=True),
            report.table(target_headers, targets, markdown=True),
            "How it is measured:\n\n"
            + METHOD.format(threads=options.threads, repeat=options.repeat, database=database),
            report.machine_section(),
        ]
    )
    report.write_section(options.doc, "noop_tracing", body)
    print(f"\nsaved to {options.doc}", flush=True)


@contextmanager
def _tracing(endpoint: str | None) -> Iterator[None]:
    """The bench's environment (which every process it starts inherits) with tracing off, or on to ``endpoint``."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(_untraced(saved))
    if endpoint:
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _untraced(environ) -> dict[str, str]:
    return {name: value for name, value in environ.items() if not name.startswith("OTEL_")}
