"""One seed of the campaign: set the system up, send the workload while the faults strike, settle, check."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from chaos.cluster import BASE_DIR, Cluster, ScratchDatabase
from chaos.faults import inject
from chaos.invariants import Check
from chaos.plan import make_plan

#: The seeds `make chaos` runs without SEED, and the test runs (a few of them).
DEFAULT_SEEDS = (1, 2, 3, 4, 5)


@dataclass
class Outcome:
    seed: int
    checks: list[Check] = field(default_factory=list)
    workdir: Path | None = None

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    def lines(self) -> list[str]:
        return [f"{'PASS' if c.ok else 'FAIL'} {c.name}: {c.figures} [seed {self.seed}]" for c in self.checks]


def run(seed: int, *, duration: float = 40.0, settle_timeout: float = 180.0, keep: bool = False, say=None) -> Outcome:
    """Run the campaign of ``seed``; its directory (logs) and database are kept when a check fails, or with ``keep``."""
    say = say or partial(print, flush=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"chaos-{seed}-"))
    for name in ("var", "mail"):
        (workdir / name).mkdir()
    outcome = Outcome(seed, workdir=workdir)
    database = ScratchDatabase(os.environ.get("DATABASE_URL"), workdir)
    plan = make_plan(seed=seed, duration=duration, postgres=database.postgres)
    (workdir / "plan.json").write_text(json.dumps(plan.as_dict()))
    say(
        f"seed {seed}: {'PostgreSQL' if database.postgres else 'SQLite'}, {len(plan.faults)} faults and "
        f"{len(plan.steps)} workload steps over {duration:.0f} s; logs in {workdir}"
    )
    cluster = Cluster(workdir=workdir, database=database)
    try:
        cluster.start_redis()
        cluster.run("manage.py", "migrate", "--noinput", "-v", "0", log="migrate.log", stub_broker=True)
        cluster.run("-m", "chaos.seed", str(workdir), log="workload.log", stub_broker=True)
        cluster.start_workers()
        cluster.start_schedulers()
        outcome.checks += _strike(cluster, plan, workdir, say)
        say(f"seed {seed}: faults over; waiting up to {settle_timeout:.0f} s for the system to settle")
        settled = json.loads(
            cluster.run("-m", "chaos.verify", "settle", str(workdir), str(settle_timeout), log="verify.log")
        )
        if settled["settled"]:
            outcome.checks.append(Check("settled", True, f"in {settled['seconds']:.0f} s"))
        else:
            still = ", ".join(settled["waiting"])
            outcome.checks.append(Check("settled", False, f"not after {settled['seconds']:.0f} s; still {still}"))
        cluster.write_worker_log()
        checks = json.loads(cluster.run("-m", "chaos.verify", "check", str(workdir), log="verify.log"))["checks"]
        outcome.checks += [Check(**check) for check in checks]
        outcome.checks.append(cluster.schedulers.check())
    except Exception as error:
        outcome.checks.append(Check("campaign ran", False, f"{type(error).__name__}: {error}"))
    finally:
        if cluster.workers is not None:
            cluster.write_worker_log()
        # A failed seed keeps its database to look into (the next run of any seed replaces it).
        cluster.stop(drop_database=outcome.passed and not keep)
    if outcome.passed and not keep:
        shutil.rmtree(workdir, ignore_errors=True)
        outcome.workdir = None
    return outcome


def _strike(cluster: Cluster, plan, workdir: Path, say) -> list[Check]:
    """Send the workload (in a process of its own) while each fault strikes on time; the workload's verdict."""
    with (workdir / "workload.log").open("ab") as log:
        driver = subprocess.Popen(
            [sys.executable, "-m", "chaos.workload", str(workdir)],
            cwd=BASE_DIR,
            env=cluster.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    started = time.monotonic()
    for fault in plan.faults:
        time.sleep(max(0.0, fault.at - (time.monotonic() - started)))
        at = time.monotonic() - started
        try:
            what = inject(cluster, fault)
        except Exception as error:  # a fault that could not be done is told, and the run goes on
            what = f"{fault.kind} could not be done: {type(error).__name__}: {error}"
        say(f"  [seed {plan.seed} +{at:5.1f}s] {what}")
    try:
        code = driver.wait(timeout=plan.duration + 300)
    except subprocess.TimeoutExpired:
        driver.kill()
        code = "killed after a timeout"
    cluster.wait_for_redis()
    sent = len((workdir / "sent.jsonl").read_text().splitlines()) if (workdir / "sent.jsonl").exists() else 0
    ok = code == 0 and sent == len(plan.steps)
    return [Check("workload sent", ok, f"{sent} of {len(plan.steps)} steps, driver exit {code}")]
