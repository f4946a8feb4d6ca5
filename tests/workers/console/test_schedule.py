"""The schedule page: recurring jobs with their last and next runs; run now, pause and resume, audited."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.contrib.messages import get_messages
from django.db import OperationalError
from dramatiq import Message

from tests.support.users import login_staff
from workers.console.audit import new_token
from workers.models import JobRun, OperatorAction, Pause
from workers.schedule_pauses import SchedulePauses
from workers.scheduler import Scheduler
from workers.schedules import FIRE_TIME_OPTION, NAMESPACE, RecurringJob, last_run_record, last_runs, recurring_jobs

pytestmark = pytest.mark.django_db

URL = "/admin/jobs/schedule/"
BERLIN = ZoneInfo("Europe/Berlin")
JOB = "prune_job_records"  # workers.tasks: "30 3 * * *"


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


def act(client, action: str, name: str = JOB, token: str | None = None):
    return client.post(URL, {"action": action, "name": name, "token": token or new_token()}, follow=True)


def texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_the_page_lists_each_recurring_job_with_its_last_run_outcome_and_next_run(client, redis_client, time_machine):
    # Given a job last sent at 03:30 today, whose run succeeded, and the clock at 10:00
    time_machine.move_to(berlin(2026, 3, 2, 10, 0), tick=False)
    last_run_record(
        redis_client, namespace=NAMESPACE, name=JOB, fire_time=berlin(2026, 3, 2, 3, 30), sent=True, detail="m1"
    )
    JobRun.objects.create(
        message_id="m1", actor_name=JOB, queue_name="low", outcome="succeeded", finished_at=berlin(2026, 3, 2, 3, 31)
    )
    login_staff(client, "view_console_schedule")

    # When staff open the schedule
    page = client.get(URL).content.decode()

    # Then the job is listed with its cron line, time zone, last run and its outcome, and next run
    row = page[page.index(f'data-name="{JOB}"') :].split("</tr>")[0]
    assert "<code>30 3 * * *</code>" in row and "<td>Europe/Berlin</td>" in row
    assert "2026-03-02 03:30:00</time>" in row and '<span class="console-badge good">sent</span>' in row
    assert "Succeeded</span>" in row
    assert '<td class="next-run"><time datetime="2026-03-03T03:30:00+01:00">2026-03-03 03:30:00</time>' in row
    # And without the permission to manage, no button
    assert "Run now" not in page and "Pause" not in page


def test_the_page_needs_its_permission(client):
    login_staff(client, "view_deadletter")
    assert client.get(URL).status_code == 403


def test_run_now_sends_one_message_as_the_scheduler_would_once_per_form(
    client, jobs, redis_client, django_capture_on_commit_callbacks
):
    # Given staff who may manage the schedule
    user = login_staff(client, "view_console_schedule", "manage_schedule")

    # When they click "Run now" twice on the same form
    token = new_token()
    with django_capture_on_commit_callbacks(execute=True):
        response = act(client, "run_now", token=token)
        again = act(client, "run_now", token=token)

    # Then one message was sent, carrying its fire time as the scheduler's do, and one audit entry
    assert f"{JOB} was sent to run once now; its schedule is unchanged." in texts(response)
    assert "That form was sent already; nothing was done again." in texts(again)
    [sent] = jobs.enqueued(JOB)
    assert sent.queue_name == "low"
    [data] = list(jobs.broker.queues["low"].queue)
    assert FIRE_TIME_OPTION in Message.decode(data).options
    action = OperatorAction.objects.get()
    assert (action.user, action.action, action.target, action.count) == (user, "run_now_schedule", JOB, 1)


def test_a_paused_job_is_skipped_by_the_scheduler_until_resumed(client, redis_client, time_machine):
    # Given staff who pause a job from the console
    login_staff(client, "view_console_schedule", "manage_schedule")
    response = act(client, "pause")
    assert Pause.objects.filter(kind="schedule", name=JOB).exists()
    assert "Resume</button>" in response.content.decode()
    # And a scheduler that sends the job's runs
    fires = []
    [declared] = [job for job in recurring_jobs() if job.name == JOB]
    job = RecurringJob(name=JOB, trigger=declared.trigger, send=lambda fire: fires.append(fire) or "m")
    scheduler = Scheduler(client=redis_client, jobs=[job], namespace="test", pauses=SchedulePauses(interval=0))
    time_machine.move_to(berlin(2026, 3, 2, 3, 29), tick=False)
    scheduler.tick()

    # When its run at 03:30 comes due
    time_machine.move_to(berlin(2026, 3, 2, 3, 30, 5), tick=False)
    scheduler.tick()

    # Then it is not sent, and its last run says it was skipped as paused
    assert fires == []
    last = last_runs(redis_client, namespace="test")[JOB]
    assert (last.fire_time, last.sent, last.detail) == (berlin(2026, 3, 2, 3, 30), False, "paused")

    # And once resumed, the next day's run is sent, and the skipped one is not caught up
    act(client, "resume")
    assert not Pause.objects.exists()
    time_machine.move_to(berlin(2026, 3, 3, 3, 30, 5), tick=False)
    scheduler.tick()
    assert fires == [berlin(2026, 3, 3, 3, 30)]
    assert [a.action for a in OperatorAction.objects.order_by("pk")] == ["pause_schedule", "resume_schedule"]


def test_a_new_leader_does_not_catch_up_a_run_skipped_as_paused(client, redis_client, time_machine):
    # Given a run skipped as paused at 03:30, then the job resumed
    time_machine.move_to(berlin(2026, 3, 2, 3, 30, 5), tick=False)
    last_run_record(
        redis_client, namespace="test", name=JOB, fire_time=berlin(2026, 3, 2, 3, 30), sent=False, detail="paused"
    )
    fires = []
    [declared] = [job for job in recurring_jobs() if job.name == JOB]
    job = RecurringJob(name=JOB, trigger=declared.trigger, send=lambda fire: fires.append(fire) or "m")

    # When a scheduler starts leading
    Scheduler(client=redis_client, jobs=[job], namespace="test", pauses=SchedulePauses(interval=0)).tick()

    # Then it does not send the skipped run
    assert fires == []


def test_managing_the_schedule_needs_its_permission(client, jobs, redis_client):
    login_staff(client, "view_console_schedule")

    response = act(client, "pause")
    act(client, "run_now")

    assert "You may not run or pause recurring jobs." in texts(response)
    assert not Pause.objects.exists()
    jobs.assert_nothing_enqueued()
    assert not OperatorAction.objects.exists()


def test_the_scheduler_keeps_the_last_pauses_it_read_while_the_database_is_away(monkeypatch, caplog):
    # Given a paused job, read once
    Pause.objects.create(kind="schedule", name=JOB)
    pauses = SchedulePauses(interval=0)
    assert pauses() == {JOB}

    # When the database cannot be read, twice
    def away():
        raise OperationalError("the database is away")

    monkeypatch.setattr("workers.schedule_pauses.paused_schedules", away)
    first, second = pauses(), pauses()

    # Then the job stays paused, and one warning says so
    assert first == second == {JOB}
    assert len([r for r in caplog.records if "Cannot read the paused recurring jobs" in r.getMessage()]) == 1
