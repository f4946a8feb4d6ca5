"""The report jobs through the middleware (StubBroker), and the scheduler that sends them."""

from __future__ import annotations

import csv
import io
import re
import smtplib
from datetime import date
from decimal import Decimal
from unittest import mock

import pytest
import time_machine
from django.core import mail
from dramatiq_crontab import scheduler

from mail.models import Mail
from mail.tasks import send_mail
from reports.models import Report
from reports.tasks import generate_daily_report, send_report_mail
from tests.orders.factories import make_product
from tests.reports.factories import berlin, place_order
from workers.models import DeadLetter

pytestmark = pytest.mark.django_db


@pytest.fixture
def sales() -> None:
    """Two paid orders on Thursday 27 November 2025: 3 mugs and a pen, 72.50 in all."""
    mug = make_product(sku="MUG", name="Enamel mug", price=Decimal("12.50"))
    pen = make_product(sku="PEN", name="Fountain pen", price=Decimal("35.00"))
    place_order(at=berlin(2025, 11, 27, 9, 0), lines=[(mug, 1), (pen, 1)])
    place_order(at=berlin(2025, 11, 27, 23, 59, 59), lines=[(mug, 2)])


def test_the_job_stores_the_report_and_mails_it_with_an_html_body_and_the_csv(sales, perform_jobs):
    # When the job for the 27th runs, with the mail it queues
    generate_daily_report.send(date="2025-11-27")
    perform_jobs()

    # Then the report is stored and one mail went to the recipients
    report = Report.objects.get()
    assert (report.date, report.data["orders"], report.data["revenue"]) == (date(2025, 11, 27), 2, "72.50")
    [message] = mail.outbox
    assert message.to == ["owner@example.com", "accounts@example.com"]
    assert message.subject == "Daily report for 2025-11-27 (Europe/Berlin): 2 orders, revenue 72.50"
    assert re.search(r"^Revenue\s+72\.50$", message.body, re.MULTILINE)
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    assert "<th" in html and "Fountain pen" in html and "72.50" in html
    [(filename, content, csv_type)] = message.attachments
    assert (filename, csv_type) == ("daily-report-2025-11-27.csv", "text/csv")
    assert content.startswith("\ufeff")  # the byte order mark that spreadsheets look for
    rows = list(csv.reader(io.StringIO(content.removeprefix("\ufeff"))))
    assert rows[:4] == [["Figure", "Value"], ["Orders", "2"], ["Paid orders", "2"], ["Revenue", "72.50"]]
    assert rows[-2:] == [["1", "MUG", "Enamel mug", "3", "37.50"], ["2", "PEN", "Fountain pen", "1", "35.00"]]
    assert Mail.objects.get().status == Mail.Status.SENT


def test_a_job_delivered_twice_stores_one_report_and_sends_one_mail(sales, perform_jobs):
    generate_daily_report.send(date="2025-11-27")
    generate_daily_report.send(date="2025-11-27")
    perform_jobs()
    assert Report.objects.count() == 1
    assert len(mail.outbox) == 1


def test_without_a_date_the_job_reports_the_day_before_it_was_sent(sales, perform_jobs):
    # Given the job sent five minutes after midnight on the 28th
    with time_machine.travel(berlin(2025, 11, 28, 0, 5), tick=False):
        generate_daily_report.send()

    # When it runs only the next morning (the workers were down)
    with time_machine.travel(berlin(2025, 11, 29, 9, 0), tick=False):
        perform_jobs()

    # Then it still reports the 27th
    assert list(Report.objects.values_list("date", flat=True)) == [date(2025, 11, 27)]


def test_a_run_the_scheduler_caught_up_late_reports_the_day_before_it_was_due(sales, perform_jobs):
    # Given the 00:05 run of the 28th, missed while no scheduler ran, caught up at 00:01 on the 29th
    with time_machine.travel(berlin(2025, 11, 29, 0, 1), tick=False):
        generate_daily_report.send_with_options(fire_time=berlin(2025, 11, 28, 0, 5).isoformat())

        # When it runs
        perform_jobs()

    # Then it reports the 27th, not the 28th
    assert list(Report.objects.values_list("date", flat=True)) == [date(2025, 11, 27)]


@pytest.mark.parametrize(
    ("day", "error"),
    [
        ("2025-02-30", "InvalidDay: '2025-02-30' is not a date (YYYY-MM-DD)"),
        ("2099-01-01", "InvalidDay: 2099-01-01 has not ended yet in Europe/Berlin"),
    ],
)
def test_a_job_for_a_bad_day_is_dead_lettered_after_one_attempt(perform_jobs, day, error):
    generate_daily_report.send(date=day)
    assert perform_jobs() == 1
    dead = DeadLetter.objects.get()
    assert (dead.reason, dead.error) == ("discarded", error)
    assert not Report.objects.exists()


def test_the_scheduler_sends_the_job_after_midnight_for_the_day_that_just_ended(sales, jobs, perform_jobs):
    # Given the scheduler's entry for the daily report, on the evening of the 27th
    [entry] = [job for job in scheduler.get_jobs() if job.name == "generate_daily_report"]
    next_run = entry.trigger.get_next_fire_time(None, berlin(2025, 11, 27, 22, 0))

    # When the clock reaches its next run and the scheduler fires it
    with time_machine.travel(next_run, tick=False):
        entry.func(*entry.args, **entry.kwargs)
        jobs.assert_enqueued(generate_daily_report, queue="low", count=1)
        perform_jobs()

    # Then the report of the 27th is stored and mailed
    assert list(Report.objects.values_list("date", flat=True)) == [date(2025, 11, 27)]
    assert len(mail.outbox) == 1


def test_a_report_mail_that_cannot_be_sent_is_retried_then_marked_failed_by_its_callback(
    sales, perform_jobs, django_capture_on_commit_callbacks
):
    # Given an SMTP server that drops every connection
    with mock.patch("django.core.mail.EmailMessage.send", side_effect=smtplib.SMTPServerDisconnected("gone")):
        # When the report is built and its mail job runs out of retries
        generate_daily_report.send(date="2025-11-27")
        perform_jobs()

    # Then the mail is marked failed with the last error, holding no claim, and its job is a dead letter
    report_mail = Mail.objects.get()
    assert (report_mail.status, report_mail.attempts, report_mail.sent_at) == ("failed", 6, None)
    assert report_mail.error == "SMTPServerDisconnected: gone"
    assert DeadLetter.objects.get(actor_name="send_mail").reason == "exhausted"
    assert mail.outbox == []

    # And a job sent again (as from the dead letters) sends it once
    send_mail.send(report_mail.pk)
    send_mail.send(report_mail.pk)
    perform_jobs()
    report_mail.refresh_from_db()
    assert (report_mail.status, report_mail.error) == ("sent", "")
    assert len(mail.outbox) == 1


def test_a_job_queued_under_the_former_report_mail_task_sends_the_pending_report_mail_once(
    sales, perform_jobs, django_capture_on_commit_callbacks, jobs
):
    # Given a report whose mail is queued, its own job lost
    with django_capture_on_commit_callbacks(execute=True):
        generate_daily_report.send(date="2025-11-27", mail=True)
    jobs.run_next()
    jobs.clear()
    report_mail = Mail.objects.get()

    # When a job of the former report mail task comes, twice, with an id of the old numbering
    with django_capture_on_commit_callbacks(execute=True):
        first = send_report_mail.enqueue(mail_id=9999)
        send_report_mail.enqueue(mail_id=9999)
    perform_jobs()

    # Then the report's mail went out once, and the task says so
    report_mail.refresh_from_db()
    assert report_mail.status == Mail.Status.SENT
    assert len(mail.outbox) == 1
    assert send_report_mail.get_result(first.id).return_value == "sent"
