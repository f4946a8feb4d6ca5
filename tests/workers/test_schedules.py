"""The recurring jobs as @cron declares them: their fire times, and what operators are shown of them."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from dramatiq import Message

from workers.schedules import FIRE_TIME_OPTION, last_run_record, latest_fire, recurring_job_list, recurring_jobs

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


@pytest.mark.parametrize(
    ("cron", "after", "now", "latest"),
    [
        ("* * * * *", berlin(2026, 3, 2, 9), berlin(2026, 3, 2, 10, 0, 30), berlin(2026, 3, 2, 10)),
        ("* * * * *", berlin(2026, 3, 2, 10), berlin(2026, 3, 2, 10, 0, 30), None),
        ("5 0 * * *", berlin(2026, 1, 1), berlin(2026, 3, 2, 0, 5), berlin(2026, 3, 2, 0, 5)),
        ("0 12 1 1 *", berlin(2024, 1, 1), berlin(2026, 6, 1), berlin(2026, 1, 1, 12)),
        ("0 12 1 1 *", berlin(2026, 1, 1, 12), berlin(2026, 6, 1), None),
    ],
)
def test_the_latest_fire_after_a_moment_and_up_to_now(cron, after, now, latest):
    assert latest_fire(CronTrigger.from_crontab(cron, timezone=BERLIN), after=after, now=now) == latest


def test_the_declared_jobs_are_listed_with_their_cron_line_time_zone_last_and_next_run(redis_client, settings):
    # Given the daily report, last sent for its 00:05 run of 2 March
    report_run = berlin(2026, 3, 2, 0, 5)
    last_run_record(
        redis_client, namespace="backoffice", name="generate_daily_report", fire_time=report_run, sent=True, detail="m1"
    )

    # When the recurring jobs are listed on the evening of the 2nd
    listed = {job.name: job for job in recurring_job_list(client=redis_client, now=berlin(2026, 3, 2, 20))}

    # Then it shows when and where it runs, when it ran last and when it runs next
    report = listed["generate_daily_report"]
    assert (report.cron, report.time_zone) == ("5 0 * * *", settings.TIME_ZONE)
    assert (report.last_run.fire_time, report.last_run.sent) == (report_run, True)
    assert report.next_run == berlin(2026, 3, 3, 0, 5)


def test_a_scheduled_message_carries_the_fire_time_it_was_sent_for(jobs):
    [report] = [job for job in recurring_jobs() if job.name == "generate_daily_report"]

    report.send(berlin(2026, 3, 3, 0, 5))

    [queued] = jobs.broker.queues["low"].queue
    assert Message.decode(queued).options[FIRE_TIME_OPTION] == "2026-03-02T23:05:00+00:00"
