"""Report jobs and their schedule: each takes plain values, calls one service, lets exceptions speak."""

from __future__ import annotations

from datetime import datetime

import dramatiq
from django.conf import settings
from django.utils import timezone
from django_tasks import task
from dramatiq.middleware import CurrentMessage
from dramatiq_crontab import cron

from mail.models import Mail
from mail.services import mail_fail, mail_send
from reports.periods import day_before, parse_day
from reports.services.daily import report_daily_build
from reports.services.mail import REPORT_MAIL_KEY_PREFIX
from workers import queues
from workers.schedules import FIRE_TIME_OPTION
from workers.tasks_backend import job_options


@cron("5 0 * * *")
# A backfill queues a report per day: only a few run at once, leaving database connections to orders.
@dramatiq.actor(queue_name=queues.LOW, max_retries=5, concurrency=("reports", settings.REPORT_CONCURRENCY))
def generate_daily_report(date: str | None = None, force: bool = False, mail: bool = True) -> None:
    """The daily report of ``date`` (YYYY-MM-DD), by default of the day before the job was sent."""
    day = parse_day(date) if date else day_before(_sent_at())
    report_daily_build(day=day, force=force, mail=mail)


def _sent_at() -> datetime:
    # The scheduler runs it at 00:05; a run caught up late, or a job that waits in the queue
    # past the next midnight, must still report the day before it was due, not before it ran.
    message = CurrentMessage.get_current_message()
    if message is None:
        return timezone.now()
    fire_time = message.options.get(FIRE_TIME_OPTION)
    return datetime.fromisoformat(fire_time) if fire_time else message.message_datetime


# The report mail was a task of its own before the mail app sent every mail (mail.tasks.send_mail);
# these two stay for the jobs queued under their names then, as @tasks (Django's tasks API).
@task(queue_name=queues.MAILERS)
@job_options(max_retries=10)
def send_report_mail_exhausted(mail_id: int, error: str) -> None:
    """Mark failed for good the report mails still pending, as ``send_report_mail`` could not send them."""
    for pending in _pending_report_mails():
        mail_fail(mail_id=pending, error=error)


@task(queue_name=queues.MAILERS)
@job_options(
    max_retries=5, retry_backoff=lambda count: 60 * (count + 1), on_retries_exhausted=send_report_mail_exhausted
)
def send_report_mail(mail_id: int) -> str:
    """Send the report mails still pending; returns "sent".

    Its ``mail_id`` named a report mail before report mails moved into the mail app, under new
    ids: the mails it stood for are the report mails that have not gone yet, each sent once.
    """
    for pending in _pending_report_mails():
        mail_send(mail_id=pending)
    return Mail.Status.SENT.value


def _pending_report_mails() -> list[int]:
    return list(
        Mail.objects.filter(key__startswith=REPORT_MAIL_KEY_PREFIX, status=Mail.Status.PENDING).values_list(
            "pk", flat=True
        )
    )
