"""Shared machinery of the scenarios: a private Redis, worker and helper processes, and job timing.

Process output always goes to a file, never to a pipe read by this process, so that no
system under test waits on (or shares a CPU with) a reader of its log.
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg
import redis

from bench.workloads import counter
from workers.processes import BASE_DIR, ProcessGroup, RedisServer, wait_until

#: The virtualenv's scripts (dramatiq, celery) sit next to its python.
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Options:
    """What the command line asked for; a scenario picks its own default for ``jobs``."""

    jobs: int | None
    repeat: int
    threads: int
    workdir: Path
    doc: Path | None


@contextmanager
def private_redis(directory: Path) -> Iterator[RedisServer]:
    """A fresh, empty redis-server for one run, stopped afterwards.

    The server keeps an append-only file but syncs it once a second, as the project's embedded
    Redis does (workers/embedded_redis.py), rather than on every write as the tests' does: a
    disk sync per command would make every system measure the disk instead of itself.
    """
    server = RedisServer(directory, appendfsync="everysec").start()
    try:
        redis.Redis.from_url(server.url).flushall()
        yield server
    finally:
        server.stop()


class Worker(ProcessGroup):
    """A worker command in a process group of its own, its output (stdout and stderr) in a file."""

    def __init__(self, args: list[str], *, env: dict[str, str], log_path: Path) -> None:
        super().__init__()
        self.args, self.env, self.log_path = args, env, log_path

    def start(self) -> Worker:
        with open(self.log_path, "ab") as log:
            self._popen(self.args, env=self.env, stdout=log)
        return self

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"{self.args[0]} exited with {self.process.returncode}:\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        """CPU time (user and system) used so far by the worker and all its living subprocesses."""
        if self.process is None:
            return 0.0
        try:
            root = psutil.Process(self.process.pid)
            processes = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0.0
        total = 0.0
        for process in processes:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


def run_json(args: list[str], *, env: dict[str, str], log_path: Path) -> dict:
    """Run a helper to completion and return the JSON object on the last line of its stdout."""
    with open(log_path, "ab") as log:
        result = subprocess.run(args, cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=log, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited with {result.returncode}; see {log_path}")
    return json.loads(result.stdout.decode().strip().splitlines()[-1])


def enqueue(module: str, jobs: int, *, env: dict[str, str], log_path: Path, django: bool = False) -> float:
    """Enqueue ``jobs`` no-ops through ``module`` in a process of its own; the seconds the sends took."""
    args = [sys.executable, "-m", "bench.workloads.enqueue", module, str(jobs), *(["--django"] if django else [])]
    return run_json(args, env=env, log_path=log_path)["seconds"]


def wait_for_jobs(client: redis.Redis, total: int, worker: Worker, *, stall_timeout: float = 60) -> int:
    """Wait until ``total`` jobs have counted themselves; the count then (it may be past ``total``).

    Gives up only when the count stops moving, never on a clock.
    """
    progress = {"count": -1, "moved": time.monotonic()}

    def done() -> bool:
        worker.check_alive()
        count = int(client.get(counter.DONE) or 0)
        if count != progress["count"]:
            progress.update(count=count, moved=time.monotonic())
        elif time.monotonic() - progress["moved"] > stall_timeout:
            raise RuntimeError(f"stuck at {count} of {total} jobs\n--- worker log ---\n{worker.log_tail()}")
        return count >= total

    wait_until(done, timeout=float("inf"), what=f"{total} jobs", interval=0.1)
    return progress["count"]


def job_span(client: redis.Redis) -> float:
    """Seconds from the start of the first job to the end of the last, as the jobs stamped them."""
    # The last job counts itself a moment before it stamps its end: the count can be seen first.
    wait_until(lambda: client.exists(counter.FIRST_STARTED, counter.LAST_FINISHED) == 2, timeout=30, what="stamps")
    return float(client.get(counter.LAST_FINISHED)) - float(client.get(counter.FIRST_STARTED))


def counting_env(redis_url: str, jobs: int) -> dict[str, str]:
    """The environment every system's processes get: where to count, and how many jobs to expect."""
    return {**os.environ, "BENCH_REDIS_URL": redis_url, "BENCH_EXPECTED_JOBS": str(jobs), "PYTHONPATH": str(BASE_DIR)}


def project_env(
    base: dict[str, str], *, var_dir: Path, redis_url: str, scratch_database_name: str | None = None
) -> dict[str, str]:
    """The project's settings as in production (DEBUG off, INFO logs), with the bench app and a private VAR_DIR.

    The database is SQLite in ``var_dir`` unless DATABASE_URL is set (PostgreSQL, say); with
    ``scratch_database_name`` a PostgreSQL DATABASE_URL is replaced by a fresh database of that
    name beside it, so a bench never touches the data of the one configured.
    """
    env = {
        **base,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "VAR_DIR": str(var_dir),
        "REDIS_URL": redis_url,
        "EXTRA_APPS": "bench.app",
        "DEBUG": "0",
        "SILENCED_SYSTEM_CHECKS": "orders.E001",  # the sandbox payment gateway, on purpose
        "SECRET_KEY": base.get("SECRET_KEY") or secrets.token_urlsafe(32),
        "LOG_LEVEL": "INFO",
    }
    env.setdefault("DATABASE_URL", f"sqlite:///{var_dir / 'db.sqlite3'}")
    if scratch_database_name and env["DATABASE_URL"].startswith("postgres"):
        env["DATABASE_URL"] = scratch_database(env["DATABASE_URL"], scratch_database_name)
    env.pop("BROKER_URL", None)
    return env


#: Scratch databases made in this run, as (server URL, name), dropped at its end.
SCRATCH_DATABASES: list[tuple[str, str]] = []


def scratch_database(url: str, name: str) -> str:
    """A new, empty PostgreSQL database beside the one in ``url``, so the bench never touches its data.

    It is dropped by ``drop_scratch_databases`` when the run ends (unless ``--keep``).
    """
    base, _, _ = url.rpartition("/")
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    SCRATCH_DATABASES.append((url, name))
    return f"{base}/{name}"


def drop_scratch_databases() -> None:
    while SCRATCH_DATABASES:
        url, name = SCRATCH_DATABASES.pop()
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrate(env: dict[str, str], *, log_path: Path) -> None:
    """Create the project's tables; the in-memory broker spares it a Redis."""
    args = [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"]
    with open(log_path, "ab") as log:
        subprocess.run(args, cwd=BASE_DIR, env={**env, "BROKER_URL": "stub://"}, stdout=log, stderr=log, check=True)


def median(values: list[float]) -> float:
    return statistics.median(values)
