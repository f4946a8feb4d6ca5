"""Which fires the scheduler sends, claims and catches up, tick by tick on a fake clock and a real Redis."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import redis
from apscheduler.triggers.cron import CronTrigger
from django.core.management import CommandError, call_command
from redis.backoff import NoBackoff
from redis.retry import Retry

from workers.scheduler import Scheduler
from workers.schedules import RecurringJob, last_runs
from workers.testing import RedisServer

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


class Sends:
    """A job's send: records the fire times it is called with, after refusing the first ``failures``."""

    def __init__(self, failures: int = 0) -> None:
        self.fires: list[datetime] = []
        self.failures = failures

    def __call__(self, fire: datetime) -> str:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the broker is down")
        self.fires.append(fire)
        return f"message-{len(self.fires)}"


def recurring(cron: str, sends: Sends, name: str = "tidy_up") -> RecurringJob:
    return RecurringJob(name=name, trigger=CronTrigger.from_crontab(cron, timezone=BERLIN), send=sends)


@pytest.fixture
def start(redis_client):
    """Make a scheduler process's state on the test Redis (only the ticks are run, by the test)."""

    def start(*jobs: RecurringJob, client: redis.Redis = redis_client, **options) -> Scheduler:
        return Scheduler(client=client, jobs=jobs, namespace="test", **options)

    return start


def messages(caplog, text: str) -> list[str]:
    return [record.getMessage() for record in caplog.records if text in record.getMessage()]


def test_a_job_is_sent_when_due_and_not_again_before_its_next_fire(start, time_machine):
    # Given a job due every minute and a scheduler started at 10:00:30
    sends = Sends()
    scheduler = start(recurring("* * * * *", sends))
    time_machine.move_to(berlin(2026, 3, 2, 10, 0, 30), tick=False)

    # When it ticks then, ten seconds later, and at 10:01
    scheduler.tick()
    time_machine.shift(10)
    scheduler.tick()
    time_machine.move_to(berlin(2026, 3, 2, 10, 1), tick=False)
    scheduler.tick()

    # Then it sent the 10:00 run (a fresh start catches it up) and the 10:01 run, once each
    assert sends.fires == [berlin(2026, 3, 2, 10, 0), berlin(2026, 3, 2, 10, 1)]


def test_two_schedulers_that_both_believe_they_lead_send_a_fire_once(start, time_machine, monkeypatch, caplog):
    # Given a leader, and a second scheduler whose lock answer is stale: it also believes it leads
    caplog.set_level(logging.INFO)
    sends = Sends()
    job = recurring("* * * * *", sends)
    leader, stalled = start(job), start(job)
    time_machine.move_to(berlin(2026, 3, 2, 10, 0, 30), tick=False)
    leader.tick()
    monkeypatch.setattr(stalled.lock, "hold", lambda: True)
    monkeypatch.setattr(stalled.lock, "holds", lambda: True)

    # When both tick at 10:01 (the stalled one first, then the other way round at 10:02)
    time_machine.move_to(berlin(2026, 3, 2, 10, 1), tick=False)
    stalled.tick()
    leader.tick()
    time_machine.move_to(berlin(2026, 3, 2, 10, 2), tick=False)
    leader.tick()
    stalled.tick()

    # Then each fire was sent once, by whichever claimed it first
    assert sends.fires == [berlin(2026, 3, 2, 10, minute) for minute in (0, 1, 2)]
    assert messages(caplog, "due at 2026-03-02T10:01:00+01:00: sent already by scheduler " + stalled.token)
    assert messages(caplog, "due at 2026-03-02T10:02:00+01:00: sent already by scheduler " + leader.token)


def test_a_failed_send_gives_its_claim_back_and_is_sent_after_a_back_off(start, time_machine, redis_client, caplog):
    # Given a job whose first send fails: the broker is down
    sends = Sends(failures=1)
    scheduler = start(recurring("0 * * * *", sends))
    time_machine.move_to(berlin(2026, 3, 2, 10, 0, 5), tick=False)

    # When it is due
    scheduler.tick()

    # Then a warning says so, the claim is given back and the last run says it was not sent
    assert messages(caplog, "Could not send tidy_up due at 2026-03-02T10:00:00+01:00 (ConnectionError: the broker")
    claim = "test:scheduler:fired:tidy_up:2026-03-02T09:00:00+00:00"
    assert not redis_client.exists(claim)
    assert last_runs(redis_client, namespace="test")["tidy_up"].sent is False

    # And once the broker is back and the back-off has passed, it is sent, once
    scheduler.tick()
    time_machine.shift(1)
    scheduler.tick()
    scheduler.tick()
    assert sends.fires == [berlin(2026, 3, 2, 10)]
    assert redis_client.exists(claim)
    assert last_runs(redis_client, namespace="test")["tidy_up"].sent is True


def test_a_new_leader_catches_up_only_the_latest_missed_run_and_a_later_start_does_not_resend_it(
    start, time_machine, redis_client, caplog
):
    # Given a job due every minute, last sent at 09:00 by a scheduler that then stopped
    caplog.set_level(logging.INFO)
    sends = Sends()
    job = recurring("* * * * *", sends)
    time_machine.move_to(berlin(2026, 3, 2, 9, 0, 1), tick=False)
    start(job).tick()
    redis_client.delete("test:scheduler:leader")

    # When another starts at 10:00:30
    time_machine.move_to(berlin(2026, 3, 2, 10, 0, 30), tick=False)
    start(job).tick()

    # Then it sends the 10:00 run only, and says which runs it skipped
    assert sends.fires == [berlin(2026, 3, 2, 9), berlin(2026, 3, 2, 10)]
    assert messages(caplog, "Caught up tidy_up due at 2026-03-02T10:00:00+01:00")
    assert messages(caplog, "runs due from 2026-03-02T09:01:00+01:00 until before 2026-03-02T10:00:00+01:00")

    # And neither a later start nor one without the record of the last run sends it again
    redis_client.delete("test:scheduler:leader")
    start(job).tick()
    redis_client.delete("test:scheduler:leader", "test:scheduler:last")
    start(job).tick()
    assert sends.fires == [berlin(2026, 3, 2, 9), berlin(2026, 3, 2, 10)]


def test_a_miss_older_than_the_catch_up_window_is_skipped_with_a_log_line(start, time_machine, redis_client, caplog):
    # Given a job due at 00:05, sent on the 1st; then no scheduler ran for two and a half days
    sends = Sends()
    job = recurring("5 0 * * *", sends)
    time_machine.move_to(berlin(2026, 3, 1, 0, 5, 1), tick=False)
    start(job).tick()
    redis_client.delete("test:scheduler:leader")
    time_machine.move_to(berlin(2026, 3, 3, 10, 0), tick=False)
    scheduler = start(job, catch_up=timedelta(hours=24))

    # When a scheduler leads again at 10:00 on the 3rd, with a window of 24 hours, and ticks on
    scheduler.tick()
    time_machine.shift(60)
    scheduler.tick()

    # Then the run of the 2nd, out of the window, is skipped with one warning; the 3rd's is sent
    assert sends.fires == [berlin(2026, 3, 1, 0, 5), berlin(2026, 3, 3, 0, 5)]
    assert len(messages(caplog, "due at 2026-03-02T00:05:00+01:00 was missed and is older than the catch-up")) == 1


def test_a_standby_sends_nothing_and_leads_once_the_lock_is_free(start, time_machine, redis_client, caplog):
    # Given another scheduler holding the lead
    caplog.set_level(logging.INFO)
    sends = Sends()
    redis_client.set("test:scheduler:leader", "elsewhere:1:abc", px=10_000)
    scheduler = start(recurring("* * * * *", sends))
    time_machine.move_to(berlin(2026, 3, 2, 10, 0, 1), tick=False)

    # When it ticks, then ticks again after the other's lock has gone
    scheduler.tick()
    assert sends.fires == []
    assert messages(caplog, "standing by: elsewhere:1:abc leads")
    redis_client.delete("test:scheduler:leader")
    scheduler.tick()

    # Then it leads and sends what is due
    assert sends.fires == [berlin(2026, 3, 2, 10)]
    assert redis_client.get("test:scheduler:leader").decode() == scheduler.token


def test_without_redis_it_stands_by_warns_once_and_leads_when_redis_is_back(start, time_machine, tmp_path, caplog):
    # Given a scheduler whose Redis is not running
    server = RedisServer(tmp_path / "redis")
    client = redis.Redis(port=server.port, socket_timeout=1, retry=Retry(NoBackoff(), 0))
    sends = Sends()
    scheduler = start(recurring("* * * * *", sends), client=client)
    time_machine.move_to(berlin(2026, 3, 2, 10, 0, 1), tick=False)

    # When it ticks three times, then Redis starts
    waits = [scheduler.tick() for _ in range(3)]
    server.start()
    try:
        scheduler.tick()
    finally:
        server.kill()

    # Then it waited longer each time, warned once, and sent the run once Redis answered
    assert waits == sorted(waits) and waits[0] < waits[-1]
    assert len(messages(caplog, "Redis is unreachable")) == 1
    assert sends.fires == [berlin(2026, 3, 2, 10)]


def test_the_lock_is_renewed_by_its_holder_only_and_survives_a_restart_that_kept_it(start, redis_client):
    first, second = start(), start()
    assert first.lock.hold() and not second.lock.hold()
    # A Redis restart that kept the key (append-only) leaves it to its holder, who renews it
    assert first.lock.hold() and redis_client.pttl("test:scheduler:leader") > 9_000
    first.lock.release()
    assert second.lock.hold()


def test_the_command_refuses_a_renewal_that_is_not_well_within_the_ttl(settings):
    settings.SCHEDULER_LOCK_TTL, settings.SCHEDULER_LOCK_RENEW = 10, 6
    with pytest.raises(CommandError, match="SCHEDULER_LOCK_RENEW"):
        call_command("runscheduler")
