"""Scenario noop_history: the no-op jobs of scenario noop through the project stack with and without JobHistory."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from bench import harness, report
from bench.harness import Options
from bench.scenarios import noop

DEFAULT_JOBS = 20_000
#: With history and metrics recorded, the stack must keep this share of its rate without them.
TARGET = 0.95

METHOD = """\
As scenario noop's "project stack" (a fresh private Redis per run, all jobs enqueued first,
then one `manage.py rundramatiq` of 1 process x {threads} threads; processing time from the
first job's start to the last one's end), run with the settings as they are and with the same
settings minus the JobHistory middleware (`bench/app/settings_without_history.py`). With it,
every job is appended to the worker process's buffer, and a thread writes the runs and the
per-minute rows once a second in one transaction. Runs take turns; figures are medians of
{repeat} runs. Database: {database}."""


@dataclass(frozen=True)
class ProjectStack(noop.System):
    settings: str = ""

    def worker_args(self, threads: int) -> list[str]:
        args = [sys.executable, "manage.py", "rundramatiq", "--processes", "1", "--threads", str(threads)]
        return [*args, "--settings", self.settings] if self.settings else args


SYSTEMS = (
    ProjectStack(
        "without", "without JobHistory", "bench.app.tasks", django=True, settings="bench.app.settings_without_history"
    ),
    ProjectStack("with", "with JobHistory", "bench.app.tasks", django=True),
)


def run(options: Options) -> None:
    jobs = options.jobs or DEFAULT_JOBS
    var_dir = options.workdir / "noop-history-var"
    setup_env = harness.project_env(
        dict(os.environ), var_dir=var_dir, redis_url="redis://unused", scratch_database_name="bench_noop_history"
    )
    harness.migrate(setup_env, log_path=options.workdir / "noop-history-migrate.log")
    work: dict[str, list[float]] = {system.key: [] for system in SYSTEMS}
    cpu: dict[str, list[float]] = {system.key: [] for system in SYSTEMS}
    for round_ in range(1, options.repeat + 1):
        for system in SYSTEMS:
            _, work_s, cpu_us, _ = noop._run_once(system, jobs, options, round_, setup_env)
            work[system.key].append(work_s)
            cpu[system.key].append(cpu_us)
            print(
                f"round {round_}/{options.repeat} {system.label:<20} {work_s:6.2f} s = {jobs / work_s:>6,.0f} jobs/s"
                f"   worker CPU {cpu_us:5.0f} us/job",
                flush=True,
            )
    rate = {key: jobs / harness.median(values) for key, values in work.items()}
    headers = ["system", "jobs", "seconds", "jobs/s", "worker CPU us/job", "each run (s)"]
    rows = [
        [
            system.label,
            f"{jobs:,}",
            f"{harness.median(work[system.key]):.2f}",
            f"{rate[system.key]:,.0f}",
            f"{harness.median(cpu[system.key]):,.0f}",
            "  ".join(f"{value:.2f}" for value in work[system.key]),
        ]
        for system in SYSTEMS
    ]
    ratio = rate["with"] / rate["without"]
    targets = [
        [
            "with / without JobHistory (jobs/s)",
            f"{ratio:.3f}",
            f">= {TARGET:g}",
            "met" if ratio >= TARGET else "not met",
        ]
    ]
    target_headers = ["ratio", "measured", "target", "verdict"]
    report.publish_comparison(
        options,
        "noop_history",
        f"{jobs:,} no-op jobs with and without the job history",
        (headers, rows),
        (target_headers, targets),
        method=METHOD.format(threads=options.threads, repeat=options.repeat, database=report.database_label()),
    )
