"""The run's schedulers: two ``manage.py runscheduler`` (one leads, one stands by), the leader's SIGKILL, the check.

A SIGKILLed leader cannot give its lock up: the standby takes the lead once the lock's TTL has
passed, and the killed one, started again, stands by. The check is the scheduler's own promise:
at the end a live scheduler leads, and no fire of a recurring job was sent twice.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import redis

from chaos.invariants import Check
from workers.testing import BASE_DIR

SCHEDULERS = 2
#: The Redis key of the leader lock (workers.scheduler: ``<namespace>:scheduler:leader``).
LEADER_KEY = "backoffice:scheduler:leader"
STARTED = re.compile(r"Scheduler (\S+) started")
SENT = re.compile(r"(?:Sent|Caught up) (\S+) due at (\S+) \(message")


class SchedulerProcess:
    """One scheduler in a session of its own; each start's output in a file of its own."""

    def __init__(self, *, number: int, env: dict[str, str], workdir: Path) -> None:
        self.number, self.env, self.workdir = number, env, workdir
        self.process: subprocess.Popen | None = None
        self.logs: list[Path] = []

    def start(self) -> SchedulerProcess:
        self.logs.append(self.workdir / f"scheduler-{self.number}.{len(self.logs) + 1}.log")
        with self.logs[-1].open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "runscheduler"],
                cwd=BASE_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def token(self) -> str | None:
        """The token it leads under, once it has said so."""
        found = STARTED.search(self.logs[-1].read_text(errors="replace")) if self.logs else None
        return found.group(1) if found else None

    def kill(self) -> None:
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if not self.alive():
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()


class Schedulers:
    def __init__(self, *, env: dict[str, str], workdir: Path, redis_url: str) -> None:
        self.processes = [SchedulerProcess(number=n, env=env, workdir=workdir) for n in range(1, SCHEDULERS + 1)]
        self.redis_url = redis_url
        self.kills = 0

    def start(self) -> Schedulers:
        for process in self.processes:
            process.start()
        return self

    def leader(self) -> SchedulerProcess | None:
        """The live process whose token holds the lock, if any."""
        client = redis.Redis.from_url(self.redis_url, socket_timeout=2)
        try:
            holder = client.get(LEADER_KEY)
        finally:
            client.close()
        live = [process for process in self.processes if process.alive()]
        return next((process for process in live if holder and process.token() == holder.decode()), None)

    def kill_leader(self, pick: float) -> tuple[SchedulerProcess, bool]:
        """SIGKILL the leader (or, if none leads now, one drawn by ``pick``); it, and whether it led."""
        try:
            leader = self.leader()
        except redis.RedisError:
            leader = None
        victim = leader or self.processes[int(pick * len(self.processes))]
        victim.kill()
        self.kills += 1
        return victim, leader is not None

    def stop(self) -> None:
        for process in self.processes:
            process.stop()

    def check(self) -> Check:
        """A live scheduler leads at the end, and each fire of each recurring job was sent at most once."""
        sent = Counter()
        for process in self.processes:
            for log in process.logs:
                sent.update(SENT.findall(log.read_text(errors="replace")))
        twice = sorted(f"{job} at {fire}" for (job, fire), count in sent.items() if count > 1)
        try:
            leader = self.leader()
        except redis.RedisError as error:
            leader, twice = None, twice + [f"Redis: {error}"]
        starts = sum(len(process.logs) for process in self.processes)
        leading = f"scheduler {leader.number}" if leader else "none"
        figures = (
            f"{SCHEDULERS} schedulers, {starts} starts, {self.kills} SIGKILLed; leading at the end: "
            f"{leading}; fires sent {sum(sent.values())}, twice {len(twice)}"
        )
        return Check("one scheduler leads, no fire sent twice", leader is not None and not twice, figures)
