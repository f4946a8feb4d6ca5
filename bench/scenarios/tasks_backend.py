"""Scenario tasks_backend: the same no-op as a plain actor and as a ``@task`` (Django's tasks API), one worker each."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import redis

from bench import harness, report
from bench.harness import Options

DEFAULT_JOBS = 20_000
#: A @task must keep this share of a plain actor's rate.
TARGET = 0.9

METHOD = """\
Both systems are the project's worker stack (`manage.py rundramatiq`, 1 process, {threads}
threads, the settings' full middleware, DEBUG off, database: {database}), each run on a fresh
private redis-server, as in the noop scenario. All jobs are enqueued first by a process of their
own while no worker runs; then the worker starts, and the processing time is the first job's
start to the last job's end, as the jobs stamp them. Runs take turns; figures are medians of
{repeat} runs. Every job's body is the same: one Redis INCR of a counter.

- **plain actor**: `noop`, a `@dramatiq.actor`, enqueued with `enqueue_on_commit(noop)`.
- **@task**: `noop_task`, a `@task` of django-tasks on `workers.tasks_backend.DramatiqBackend`,
  enqueued with `noop_task.enqueue()`, which also writes the READY result before the send.
  Besides the body, each run hands its start and its end to the worker process's result
  writer, which sends what gathered in one script call every few milliseconds (a no-op's start
  and end as one write).

Worker CPU per job is the steadier figure when other work shares the machine: the jobs/s of
two runs taken minutes apart move with the machine's load, the CPU a job costs much less."""


@dataclass(frozen=True)
class System:
    key: str
    label: str
    module: str


SYSTEMS = (
    System("actor", "plain actor", "bench.app.tasks"),
    System("task", "@task", "bench.workloads.task_noop"),
)


@dataclass
class Runs:
    enqueue: list[float] = field(default_factory=list)
    work: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)


def run(options: Options) -> None:
    """Run both systems ``options.repeat`` times, taking turns; print and save the medians."""
    jobs = options.jobs or DEFAULT_JOBS
    var_dir = options.workdir / "tasks-var"
    setup_env = harness.project_env(
        dict(os.environ), var_dir=var_dir, redis_url="redis://unused", scratch_database_name="bench_tasks"
    )
    harness.migrate(setup_env, log_path=options.workdir / "tasks-migrate.log")
    runs = {system.key: Runs() for system in SYSTEMS}
    for round_ in range(1, options.repeat + 1):
        for system in SYSTEMS:
            enqueue_s, work_s, cpu_us = _run_once(system, jobs, options, round_, setup_env)
            runs[system.key].enqueue.append(enqueue_s)
            runs[system.key].work.append(work_s)
            runs[system.key].cpu_us.append(cpu_us)
            print(
                f"round {round_}/{options.repeat} {system.label:<12} enqueue {jobs / enqueue_s:>7,.0f}/s"
                f"   process {work_s:6.2f} s = {jobs / work_s:>6,.0f} jobs/s   worker CPU {cpu_us:5.0f} us/job",
                flush=True,
            )
    _report(runs, jobs, options)


def _run_once(system: System, jobs: int, options: Options, round_: int, setup_env: dict) -> tuple[float, float, float]:
    directory = options.workdir / f"tasks-{system.key}-{round_}"
    with harness.private_redis(directory / "redis") as server:
        env = harness.project_env(
            {**harness.counting_env(server.url, jobs), "DATABASE_URL": setup_env["DATABASE_URL"]},
            var_dir=Path(setup_env["VAR_DIR"]),
            redis_url=server.url,
        )
        enqueue_s = harness.enqueue(system.module, jobs, env=env, log_path=directory / "enqueue.log", django=True)
        client = redis.Redis.from_url(server.url)
        args = [sys.executable, "manage.py", "rundramatiq", "--processes", "1", "--threads", str(options.threads)]
        worker = harness.Worker(args, env=env, log_path=directory / "worker.log")
        try:
            first = harness.wait_for_jobs(client, 1, worker.start())
            cpu_before = worker.cpu_seconds()
            last = harness.wait_for_jobs(client, jobs, worker)
            cpu_us = (worker.cpu_seconds() - cpu_before) / max(1, last - first) * 1e6
            work_s = harness.job_span(client)
        finally:
            worker.stop()
        return enqueue_s, work_s, cpu_us


def _report(runs: dict[str, Runs], jobs: int, options: Options) -> None:
    rate = {key: jobs / harness.median(r.work) for key, r in runs.items()}
    headers = ["system", "jobs", "seconds", "jobs/s", "vs plain actor", "enqueue jobs/s", "worker CPU us/job"]
    rows = [
        [
            system.label,
            f"{jobs:,}",
            f"{harness.median(runs[system.key].work):.2f}",
            f"{rate[system.key]:,.0f}",
            f"{rate[system.key] / rate['actor']:.2f}",
            f"{jobs / harness.median(runs[system.key].enqueue):,.0f}",
            f"{harness.median(runs[system.key].cpu_us):,.0f}",
        ]
        for system in SYSTEMS
    ]
    measured = rate["task"] / rate["actor"]
    verdict = "met" if measured >= TARGET else "not met"
    cpu = harness.median(runs["actor"].cpu_us) / harness.median(runs["task"].cpu_us)
    targets = [
        ["@task / plain actor (jobs/s)", f"{measured:.2f}", f">= {TARGET:g}", verdict],
        [
            "plain actor / @task worker CPU per job",
            f"{cpu:.2f}",
            f">= {TARGET:g}",
            "met" if cpu >= TARGET else "not met",
        ],
    ]
    target_headers = ["ratio", "measured", "target", "verdict"]
    each = [
        [s.label, "  ".join(f"{v:.2f}" for v in runs[s.key].work), "  ".join(f"{v:.0f}" for v in runs[s.key].cpu_us)]
        for s in SYSTEMS
    ]
    report.publish_comparison(
        options,
        "tasks_backend",
        f"{jobs:,} no-op jobs as a plain actor and as a @task",
        (headers, rows),
        (target_headers, targets),
        method=METHOD.format(threads=options.threads, repeat=options.repeat, database=report.database_label()),
        extra=("Each run:\n\n" + report.table(["system", "seconds", "worker CPU us/job"], each, markdown=True),),
        machine={"django-tasks": report._version("django-tasks")},
    )
