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
#: With tracing on, the stack must keep this share of its rate with tracing off (and spend at most
#: 2 - TARGET times the worker CPU per job: the steadier figure on a shared machine).
TARGET = 0.95

METHOD = """\
As scenario noop's "project stack" (a fresh private Redis per run, all jobs enqueued first,
then one `manage.py rundramatiq` of 1 process x {threads} threads; processing time from the
first job's start to the last one's end), run with the OTEL_* variables unset (tracing off)
and with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at a local OTLP/HTTP receiver
(`workers.otlp_sink`, a thread of the bench process on 127.0.0.1 that parses each export and
counts its spans): tracing every job; the same without the Redis instrumentation
(`OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=redis`); and sampling one trace in ten
(`OTEL_TRACES_SAMPLER=parentbased_traceidratio`, `OTEL_TRACES_SAMPLER_ARG=0.1`). A traced job
is a CONSUMER span with its Redis call (the bench's counter) as a child span, batched by the
SDK's BatchSpanProcessor (default settings: every 5 s or 512 spans) and sent as protobuf over
HTTP by the workers' exporter (`workers/tracing_export.py`); the worker's own Redis polling and
per-job bookkeeping are not traced. Runs take turns; figures are medians of {repeat} runs.
Database: {database}.

Read these as rough: on this shared 2-core machine, with other work running, a system's figures
move from run to run by about as much as the effects measured (see each run), and in earlier
runs of this scenario tracing off even came out slower than on while spending less CPU per job.
What tracing costs a worker is its spans: with the Python SDK about 45 us of CPU to make each
(the job's, and the Redis instrumentation's for its call), then about 18 us to write it out
(a quarter of what the SDK's own encoder takes), and the garbage collections the spans waiting for
their batch bring on (cheap, as the worker freezes its booted heap). A no-op job traced whole,
with its one Redis call, pays for two; the platform's own Redis calls make none."""

SYSTEMS = (
    ProjectStack("off", "tracing off", "bench.app.tasks", django=True),
    ProjectStack("on", "tracing on, every job", "bench.app.tasks", django=True),
    ProjectStack("no_redis", "on, no Redis spans", "bench.app.tasks", django=True),
    ProjectStack("sampled", "tracing on, 1 job in 10", "bench.app.tasks", django=True),
)
#: The variables of each system besides the endpoint.
VARIABLES = {
    "off": {},
    "on": {},
    "no_redis": {"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "redis"},
    "sampled": {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
}


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
    exported: dict[str, list[int]] = {system.key: [] for system in SYSTEMS}
    with OtlpSink(keep=False) as sink:
        for round_ in range(1, options.repeat + 1):
            for system in SYSTEMS:
                before = sink.received
                with _tracing(None if system.key == "off" else sink.url, VARIABLES[system.key]):
                    _, work_s, cpu_us, _ = noop._run_once(system, jobs, options, round_, setup_env)
                work[system.key].append(work_s)
                cpu[system.key].append(cpu_us)
                spans = sink.received - before
                exported[system.key].append(spans)
                print(
                    f"round {round_}/{options.repeat} {system.label:<24} {work_s:6.2f} s = {jobs / work_s:>6,.0f} "
                    f"jobs/s   worker CPU {cpu_us:5.0f} us/job   spans exported {spans:,}",
                    flush=True,
                )
    _report(jobs, options, work, cpu, exported)


def _report(
    jobs: int,
    options: Options,
    work: dict[str, list[float]],
    cpu: dict[str, list[float]],
    exported: dict[str, list[int]],
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
            "  ".join(f"{spans:,}" for spans in exported[system.key]),
            "  ".join(f"{value:.2f}" for value in work[system.key]),
        ]
        for system in SYSTEMS
    ]
    target_headers = ["ratio", "measured", "target", "verdict"]
    targets = []
    for key in ("on", "no_redis", "sampled"):
        label = next(system.label for system in SYSTEMS if system.key == key)
        ratio = rate[key] / rate["off"]
        verdict = "met" if ratio >= TARGET else "not met"
        targets.append([f"{label} / off (jobs/s)", f"{ratio:.3f}", f">= {TARGET:g}", verdict])
    for key in ("on", "no_redis", "sampled"):
        label = next(system.label for system in SYSTEMS if system.key == key)
        cpu_ratio = harness.median(cpu[key]) / harness.median(cpu["off"])
        verdict = "met" if cpu_ratio <= 2 - TARGET else "not met"
        targets.append([f"{label} / off (worker CPU per job)", f"{cpu_ratio:.3f}", f"<= {2 - TARGET:g}", verdict])
    report.publish_comparison(
        options,
        "noop_tracing",
        f"{jobs:,} no-op jobs with OpenTelemetry tracing off and on",
        (headers, rows),
        (target_headers, targets),
        method=METHOD.format(threads=options.threads, repeat=options.repeat, database=report.database_label()),
    )


@contextmanager
def _tracing(endpoint: str | None, variables: dict[str, str]) -> Iterator[None]:
    """The bench's environment (which every process it starts inherits) with tracing off, or on to ``endpoint``."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(_untraced(saved))
    if endpoint:
        os.environ.update({"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, **variables})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _untraced(environ) -> dict[str, str]:
    return {name: value for name, value in environ.items() if not name.startswith("OTEL_")}
