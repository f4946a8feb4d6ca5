"""The worker supervisor: keeps N Dramatiq worker groups running, replaces one that dies, stops them gently.

Dramatiq's main process shuts its whole group down when one worker process dies (a job that
took it down, the OOM killer), and under a process manager that stops everything else too.
Its workers also take a second SIGTERM as "exit now", and a process manager that signals the
whole process group (honcho does) delivers two: one from the manager and one forwarded by
Dramatiq's main process. Here each worker group is a ``rundramatiq --processes 1`` in a
session of its own, so only this supervisor signals it, once; a group that exits while the
supervisor is not stopping is started again, after a back-off if it keeps dying young. No
process-manager library does both of these for a Django command, so it is written here.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

BASE_DIR = Path(__file__).resolve().parent.parent

#: A group that ran at least this long before it died is started again at once.
HEALTHY_AFTER = 30.0
#: The longest wait before starting again a group that keeps dying young, in seconds.
MAX_BACKOFF = 10.0


@dataclass
class Group:
    """One ``rundramatiq`` process group and its restart history; a reserved group has its own threads and queues."""

    number: int
    threads: int = 0
    queues: list[str] = field(default_factory=list)
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    failures: int = 0
    next_start: float = 0.0
    restarts: int = field(default=0)


class Supervisor:
    """Run ``processes`` worker groups of ``threads`` threads each, and the reserved groups, until asked to stop.

    Reserved capacity (as Sidekiq's capsules): Dramatiq's threads of one process share one work
    queue, so a thread cannot be kept for one queue inside it. A queue given reserved threads
    gets a worker process of its own that consumes that queue only, and the other processes leave
    it alone (they would otherwise prefetch its jobs into their own busy work queues): its jobs
    start at once even while every other thread is busy with slow jobs of other queues.

    Parameters:
      processes(int): Worker groups (one Dramatiq worker process each).
      threads(int): Worker threads per process.
      queues(list[str]): Queues to consume; all when empty.
      shutdown_timeout(float): How long a stopping worker may finish its running jobs before it
        puts back what it holds and exits, in seconds.
      reserved(dict[str, int]): Queue name -> threads kept for that queue alone, in a process of its own.
    """

    def __init__(
        self,
        *,
        processes: int,
        threads: int,
        queues: list[str] | None = None,
        shutdown_timeout: float = 20.0,
        reserved: dict[str, int] | None = None,
    ) -> None:
        reserved = dict(reserved or {})
        if reserved and not queues:
            from workers.queues import names  # settings are read only when reserving

            queues = [name for name in names() if name not in reserved]
        self.groups = [Group(number, threads, list(queues or [])) for number in range(processes)]
        for name, reserved_threads in reserved.items():
            self.groups.append(Group(len(self.groups), reserved_threads, [name]))
        self.threads = threads
        self.queues = list(queues or [])
        self.shutdown_timeout = shutdown_timeout
        self.stopping = False

    def command(self, group: Group | None = None) -> list[str]:
        threads, queues = (group.threads, group.queues) if group is not None else (self.threads, self.queues)
        args = [
            sys.executable,
            str(BASE_DIR / "manage.py"),
            "rundramatiq",
            "--processes",
            "1",
            "--threads",
            str(threads),
            "--worker-shutdown-timeout",
            str(int(self.shutdown_timeout * 1000)),
        ]
        return args + (["--queues", *queues] if queues else [])

    def run(self) -> int:
        """Supervise until SIGTERM or SIGINT, then stop every group; returns the exit status."""
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGHUP, self._stop)
        logger.info(
            "Supervising %d worker process(es): %s.",
            len(self.groups),
            ", ".join(f"{g.threads} thread(s) for {' '.join(g.queues) or 'every queue'}" for g in self.groups),
        )
        while not self.stopping:
            for group in self.groups:
                self._tend(group)
            time.sleep(0.2)
        return self._wait_for_all()

    def _tend(self, group: Group) -> None:
        now = time.monotonic()
        if group.process is not None:
            code = group.process.poll()
            if code is None:
                return
            lived = now - group.started_at
            group.failures = 0 if lived >= HEALTHY_AFTER else group.failures + 1
            backoff = min(MAX_BACKOFF, 0.5 * 2**group.failures) if group.failures else 0.0
            logger.warning(
                "Worker process group %d (pid %d) exited with code %s after %.1f s; starting a new one in %.1f s.",
                group.number,
                group.process.pid,
                code,
                lived,
                backoff,
            )
            group.process = None
            group.next_start = now + backoff
            group.restarts += 1
        if now >= group.next_start and not self.stopping:
            group.process = subprocess.Popen(self.command(group), cwd=BASE_DIR, start_new_session=True)
            group.started_at = now

    def _stop(self, signum, frame) -> None:
        if self.stopping:
            logger.info("Already stopping; waiting for the workers to finish.")
            return
        self.stopping = True
        logger.info("Stopping %d worker process group(s)...", sum(1 for g in self.groups if g.process))
        for group in self.groups:
            # Only to Dramatiq's main process: it forwards one SIGTERM to its worker.
            self._signal(group, signal.SIGTERM, group_wide=False)

    def _wait_for_all(self) -> int:
        deadline = time.monotonic() + self.shutdown_timeout + 10
        for group in self.groups:
            if group.process is None:
                continue
            try:
                group.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.error("Worker process group %d did not stop in time; killing it.", group.number)
                self._signal(group, signal.SIGKILL, group_wide=True)
                group.process.wait(10)
        logger.info("All worker processes stopped.")
        return 0

    @staticmethod
    def _signal(group: Group, signum: int, *, group_wide: bool) -> None:
        if group.process is None or group.process.poll() is not None:
            return
        try:
            if group_wide:
                os.killpg(group.process.pid, signum)
            else:
                os.kill(group.process.pid, signum)
        except ProcessLookupError:
            pass
