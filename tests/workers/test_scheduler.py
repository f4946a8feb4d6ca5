"""Real `manage.py runscheduler` processes: failover, a Redis restart and catch-up, with no run doubled."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from django.utils import timezone

from tests.support.tasks import recorded
from workers import queues
from workers.testing import BASE_DIR, wait_until

pytestmark = pytest.mark.delivery

#: The test app whose one recurring job, ``record_fire``, records each run (tests/support/recurring/).
RECURRING_APP = "tests.support.recurring"
RUNS = "recurring-runs"


class SchedulerProcess:
    """A `manage.py runscheduler` whose output goes to a file; its lock lives 3 s, renewed every 0.5 s."""

    def __init__(self, log: Path, *, redis_url: str, schedule: dict) -> None:
        self.log = log
        env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "EXTRA_APPS": RECURRING_APP,
            "RECURRING_TEST_SCHEDULE": json.dumps(schedule),
            "SCHEDULER_LOCK_TTL": "3",
            "SCHEDULER_LOCK_RENEW": "0.5",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("BROKER_URL", None)  # the test process's StubBroker: the scheduler sends through Redis
        with log.open("w") as output:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "runscheduler"],
                cwd=BASE_DIR,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def output(self) -> str:
        return self.log.read_text()

    def lines(self, pattern: str) -> list[str]:
        return [line for line in self.output.splitlines() if re.search(pattern, line)]

    def wait_for(self, pattern: str, *, count: int = 1, timeout: float = 60) -> list[str]:
        def seen() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"the scheduler exited with {self.process.returncode}:\n{self.output}")
            return len(self.lines(pattern)) >= count

        wait_until(seen, timeout=timeout, what=f"{pattern!r} from the scheduler:\n{self.output}")
        return self.lines(pattern)

    def sent_fire_times(self) -> list[str]:
        """The record_fire runs this scheduler says it sent, as fire times in UTC."""
        found = re.findall(r"(?:Sent|Caught up) record_fire due at (\S+)", self.output)
        return [datetime.fromisoformat(fire).astimezone(UTC).isoformat() for fire in found]

    def stop(self) -> None:
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        self._signal(signal.SIGKILL)
        self.process.wait(10)

    def _signal(self, signum: int) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signum)


@pytest.fixture
def start_scheduler(private_redis, settings, tmp_path):
    """Start schedulers on the test's own Redis (records are read there too); all stopped after."""
    settings.REDIS_URL = private_redis.url
    started: list[SchedulerProcess] = []

    def start(schedule: dict) -> SchedulerProcess:
        started.append(
            SchedulerProcess(tmp_path / f"scheduler-{len(started)}.log", redis_url=private_redis.url, schedule=schedule)
        )
        return started[-1]

    yield start
    for scheduler in started:
        scheduler.stop()


@pytest.fixture
def worker(start_worker, private_redis):
    return start_worker(redis_url=private_redis.url, env={"EXTRA_APPS": RECURRING_APP}, queues=[queues.URGENT])


def fire_times() -> list[str]:
    """The fire times of the record_fire runs, in the order they ran."""
    return [run["fire_time"] for run in recorded(RUNS)]


def test_when_the_leader_is_killed_the_standby_takes_over_and_no_run_is_doubled_or_missed(start_scheduler, worker):
    # Given a job due every 6 seconds, one scheduler leading and one standing by
    every_6_seconds = {"second": "*/6"}
    leader = start_scheduler(every_6_seconds)
    leader.wait_for(" leads ")
    standby = start_scheduler(every_6_seconds)
    standby.wait_for("standing by")
    wait_until(lambda: len(fire_times()) >= 2, timeout=60, what="two runs sent by the leader")

    # When the leader is killed 1 to 2 s before a run is due (its lock outlives it by 2.5 s at least)
    wait_until(lambda: timezone.now().second % 6 == 4, timeout=10, what="a moment before a run")
    leader.kill()

    # Then the standby leads, catching up the run due while nobody led, and the runs go on
    [leads] = standby.wait_for(" leads ")
    assert "caught up: record_fire" in leads
    ran = len(fire_times())
    wait_until(lambda: len(fire_times()) >= ran + 2, timeout=60, what="two runs sent by the new leader")
    standby.stop()
    sent = leader.sent_fire_times() + standby.sent_fire_times()
    wait_until(lambda: len(fire_times()) >= len(sent), timeout=30, what="every run sent to have run")

    # And each fire ran once, none was missed, and each scheduler sent its share
    times = sorted(datetime.fromisoformat(fire) for fire in fire_times())
    assert len(times) == len(set(times)) == len(sent)
    assert all(later - earlier == timedelta(seconds=6) for earlier, later in pairwise(times))
    assert leader.sent_fire_times() and standby.sent_fire_times()


def test_the_scheduler_rides_out_a_redis_restart_and_sends_again_after_it(start_scheduler, worker, private_redis):
    # Given a scheduler that has sent a run of a job due every 3 seconds
    scheduler = start_scheduler({"second": "*/3"})
    wait_until(lambda: fire_times(), timeout=60, what="a first run")

    # When Redis is killed and comes back 5 seconds later, with its append-only file
    private_redis.kill()
    scheduler.wait_for("Redis is unreachable")
    time.sleep(5)  # the outage itself, not a wait for an outcome
    private_redis.start()
    back = timezone.now()

    # Then the scheduler, still running, leads again and runs are sent after the restart
    scheduler.wait_for("Redis is reachable again")
    scheduler.wait_for(" leads ", count=2)
    wait_until(
        lambda: any(datetime.fromisoformat(fire) > back for fire in fire_times()), timeout=60, what="a run after"
    )
    assert scheduler.process.poll() is None
    assert len(scheduler.lines("WARNING.*Redis is unreachable")) == 1
    assert len(fire_times()) == len(set(fire_times()))


def test_a_run_missed_while_no_scheduler_ran_is_sent_once_and_not_again_by_the_next_start(start_scheduler, worker):
    # Given a job due once a day, at a moment that passes while no scheduler runs
    due = timezone.localtime().replace(microsecond=0) + timedelta(seconds=2)
    once_a_day = {"hour": due.hour, "minute": due.minute, "second": due.second}
    wait_until(lambda: timezone.now() > due, timeout=10, what="the run's time to pass")

    # When a scheduler starts
    first = start_scheduler(once_a_day)
    first.wait_for(" leads ")

    # Then it sends the missed run, which runs once
    assert first.lines(re.escape(f"Caught up record_fire due at {due.isoformat()}"))
    wait_until(lambda: fire_times() == [due.astimezone(UTC).isoformat()], timeout=60, what="the missed run")

    # And a scheduler started after it stopped does not send it again
    first.stop()
    assert first.lines("stopped; the lead is free")
    second = start_scheduler(once_a_day)
    [leads] = second.wait_for(" leads ")
    assert "record_fire" not in leads and not second.sent_fire_times()
    assert fire_times() == [due.astimezone(UTC).isoformat()]
