"""The system under test as processes: a scratch database, a private Redis, supervised workers, schedulers.

Redis and the workers are started as the delivery tests start them (``workers.testing.RedisServer`` and
``WorkerProcess``). The scratch PostgreSQL database is made and dropped as the benchmarks do
(bench/harness.py), written again here because the harness needs the bench's own requirements.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from chaos.scheduler import Schedulers
from workers.testing import BASE_DIR, RedisServer, WorkerProcess, wait_until

WORKER_PROCESSES = 2
WORKER_THREADS = 4
#: A worker silent this long is dead and housekeeping (every second here) puts its jobs back:
#: short, so that the crash loops of a two-minute run are over in it; longer than any refusal.
HEARTBEAT_TIMEOUT_MS = 5000


class ScratchDatabase:
    """SQLite in the run's directory, or, when ``configured`` is a PostgreSQL URL, a new database beside it."""

    def __init__(self, configured: str | None, workdir: Path) -> None:
        self.postgres = bool(configured) and configured.startswith("postgres")
        if not self.postgres:
            self.url = f"sqlite:///{workdir / 'var' / 'db.sqlite3'}"
            return
        base, _, name = configured.partition("?")[0].rpartition("/")
        # Made from the server's maintenance database: the configured one need not exist (tests make their own).
        self.server_url, self.name = f"{base}/postgres", f"{name}_chaos"
        self.url = f"{base}/{self.name}"
        with psycopg.connect(self.server_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{self.name}"')

    def drop_connections(self) -> int:
        """Terminate every other session on the database, as a failover or a restarted server would; how many."""
        with psycopg.connect(self.url, autocommit=True) as connection:
            rows = connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
        return len(rows)

    def drop(self) -> None:
        if self.postgres:
            with psycopg.connect(self.server_url, autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def project_env(*, workdir: Path, database_url: str, redis_url: str) -> dict[str, str]:
    """The settings every process of the run gets: production-like, over this run's own database, Redis and mailbox."""
    env = {key: value for key, value in os.environ.items() if key not in {"BROKER_URL", "RABBITMQ_URL", "VAR_DIR"}}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        VAR_DIR=str(workdir / "var"),
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        EXTRA_APPS="tests.support",
        DEBUG="0",
        SILENCED_SYSTEM_CHECKS="orders.E001",  # the sandbox payment gateway, on purpose
        SECRET_KEY=secrets.token_urlsafe(32),
        LOG_LEVEL="INFO",
        EMAIL_BACKEND="chaos.mailbox.EmailBackend",
        CHAOS_MAIL_DIR=str(workdir / "mail"),
        REPORT_RECIPIENTS="",
        REDIS_HEARTBEAT_TIMEOUT_MS=str(HEARTBEAT_TIMEOUT_MS),
        JOB_HOUSEKEEPING_INTERVAL="1",
        PYTHONUNBUFFERED="1",
    )
    return env


def children(pid: int) -> list[int]:
    """The live child processes of ``pid``, read from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the fields that follow it are plain.
        state, parent = stat.rsplit(")", 1)[1].split()[:2]
        if int(parent) == pid and state != "Z":
            found.append(int(entry))
    return sorted(found)


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


class Cluster:
    """Everything a run starts, and the handles the faults need."""

    def __init__(self, *, workdir: Path, database: ScratchDatabase) -> None:
        self.workdir, self.database = workdir, database
        self.redis = RedisServer(workdir / "redis")
        self.env: dict[str, str] = {}
        self.workers: WorkerProcess | None = None
        self.schedulers: Schedulers | None = None

    def start_redis(self) -> None:
        self.redis.start()
        self._sync_every_write()
        self.env = project_env(workdir=self.workdir, database_url=self.database.url, redis_url=self.redis.url)

    def kill_redis(self, *, down: float) -> None:
        """kill -9 redis-server, and start it again from its append-only file ``down`` seconds later."""
        self.redis.kill()
        time.sleep(down)
        self.redis.start()
        self._sync_every_write()

    def _sync_every_write(self) -> None:
        # Redis writes and syncs each command to its append-only file before it answers it, so a
        # kill -9 loses nothing it acknowledged (see docs/chaos.md).
        import redis

        client = redis.Redis.from_url(self.redis.url)
        client.config_set("appendfsync", "always")
        client.close()

    def run(self, *args: str, log: str, stub_broker: bool = False) -> str:
        """Run ``python ARGS`` (a module with -m, or manage.py) to its end; its last line of output (JSON)."""
        env = {**self.env, **({"BROKER_URL": "stub://"} if stub_broker else {})}
        with (self.workdir / log).open("ab") as output:
            result = subprocess.run(
                [sys.executable, *args],
                cwd=BASE_DIR,
                env=env,
                stdout=subprocess.PIPE,
                stderr=output,
                check=False,
            )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} exited with {result.returncode}; see {self.workdir / log}")
        lines = result.stdout.decode().strip().splitlines()
        return lines[-1] if lines else ""

    def start_workers(self) -> None:
        # WorkerProcess lays its env over this process's own, where a test run sets BROKER_URL=stub://:
        # None takes a variable out.
        env = {**self.env, "BROKER_URL": None, "RABBITMQ_URL": None}
        self.workers = WorkerProcess(env=env, processes=WORKER_PROCESSES, threads=WORKER_THREADS, supervised=True)
        self.workers.start(timeout=120)
        self.workers.wait_for_log(r"Worker process is ready for action", count=WORKER_PROCESSES, timeout=120)

    def start_schedulers(self) -> None:
        self.schedulers = Schedulers(env=self.env, workdir=self.workdir, redis_url=self.redis.url).start()

    def worker_pids(self) -> list[int]:
        """The Dramatiq worker processes: forks of each ``rundramatiq`` main process under the supervisor."""
        if self.workers is None or self.workers.process is None:
            return []
        pids = []
        for main in children(self.workers.process.pid):
            pids += [pid for pid in children(main) if cmdline(pid) == cmdline(main)]
        return pids

    def wait_for_redis(self) -> None:
        import redis

        client = redis.Redis.from_url(self.redis.url)
        wait_until(lambda: _pings(client), timeout=30, what="Redis")

    def stop(self, *, drop_database: bool = True) -> None:
        """Stop what was started, the scheduler first; each step whatever became of the others."""
        for step in (
            lambda: self.schedulers and self.schedulers.stop(),
            lambda: self.workers and self.workers.stop(timeout=40),
            self.redis.stop,
            self.database.drop if drop_database else (lambda: None),
        ):
            try:
                step()
            except Exception as error:  # a teardown that fails must not hide the verdicts
                print(f"teardown: {type(error).__name__}: {error}", file=sys.stderr)

    def write_worker_log(self) -> Path:
        path = self.workdir / "workers.log"
        path.write_text(self.workers.log if self.workers else "")
        return path


def _pings(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False
