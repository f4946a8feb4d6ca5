"""The scheduler's leader lock: while one `manage.py crontab` runs, a second one never starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from workers.testing import BASE_DIR, wait_until

pytestmark = pytest.mark.delivery


class Scheduler:
    """A `manage.py crontab` process whose output goes to a file."""

    def __init__(self, log: Path, *, redis_url: str) -> None:
        self.log = log
        env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "BROKER_URL": "stub://",
            "SCHEDULER_LOCK_WAIT": "1",
            "PYTHONUNBUFFERED": "1",
        }
        with log.open("w") as output:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "crontab"],
                cwd=BASE_DIR,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def output(self) -> str:
        return self.log.read_text()

    def wait_until_started(self) -> None:
        wait_until(lambda: "Starting scheduler" in self.output, timeout=60, what=f"the scheduler:\n{self.output}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def test_a_second_scheduler_never_runs_while_the_first_holds_the_lock(redis_client, redis_url, tmp_path):
    started: list[Scheduler] = []

    def start(name: str) -> Scheduler:
        started.append(Scheduler(tmp_path / f"{name}.log", redis_url=redis_url))
        return started[-1]

    try:
        # Given one scheduler running
        first = start("first")
        first.wait_until_started()

        # When a second one starts
        second = start("second")
        second.process.wait(60)

        # Then it says another one runs and ends without scheduling anything
        assert "Another scheduler is already running." in second.output
        assert "Starting scheduler" not in second.output

        # And once the first has stopped, the next one takes over
        first.stop()
        start("third").wait_until_started()
    finally:
        for scheduler in started:
            scheduler.stop()
