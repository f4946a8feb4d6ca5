"""The report commands: a table, a queued job, a batch with a progress bar, and clear usage errors."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from decimal import Decimal

import dramatiq
import pytest
from django.core import mail
from django.core.management import ManagementUtility, call_command
from django.core.management.base import CommandError
from django.utils import timezone

from reports.models import Report
from reports.services.daily import report_daily_backfill
from reports.tasks import generate_daily_report
from tests.orders.factories import make_product
from tests.reports.factories import berlin, place_order
from workers.cancellation import cancel_batch
from workers.models import Batch


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def worker(transactional_db):
    """A Dramatiq worker with two threads on the StubBroker, as a worker process would run jobs."""
    worker = dramatiq.Worker(dramatiq.get_broker(), worker_threads=2, worker_timeout=50)
    worker.start()
    yield worker
    worker.stop()


@pytest.mark.django_db
def test_generate_report_prints_the_figures_as_a_table(jobs):
    # Given a paid order on 27 November 2025
    place_order(at=berlin(2025, 11, 27, 12, 0), lines=[(make_product(sku="MUG", price=Decimal("12.50")), 2)])

    # When the report of that day is generated
    out, _ = run("generate_report", "daily", "--date", "2025-11-27")

    # Then it is stored and printed
    assert out.startswith("Daily report for 2025-11-27 (Europe/Berlin)\n")
    assert re.search(r"^Revenue\s+25\.00$", out, re.MULTILINE)
    assert re.search(r"^\s+1\s+MUG\s+Product \d+\s+2\s+25\.00$", out, re.MULTILINE)
    assert Report.objects.get().data["revenue"] == "25.00"


@pytest.mark.django_db
def test_generate_report_async_queues_the_job_and_prints_its_message_id(jobs):
    out, _ = run("generate_report", "daily", "--date", "2025-11-27", "--async", "--force")
    [job] = jobs.assert_enqueued(generate_daily_report, date="2025-11-27", force=True, mail=True, count=1)
    assert out == f"{job.message_id}\n"
    assert not Report.objects.exists()


@pytest.mark.django_db
def test_show_report_prints_a_stored_report_as_a_table_csv_or_json(jobs):
    run("generate_report", "daily", "--date", "2025-11-27", "--no-mail")
    table, _ = run("show_report", "daily", "--date", "2025-11-27")
    assert re.search(r"^Orders\s+0$", table, re.MULTILINE)
    data, _ = run("show_report", "daily", "--date", "2025-11-27", "--format", "json")
    assert json.loads(data) == Report.objects.get().data
    csv, _ = run("show_report", "daily", "--date", "2025-11-27", "--format", "csv")
    assert csv.startswith("Figure,Value\r\nOrders,0\r\n")
    with pytest.raises(CommandError, match="There is no daily report for 2025-11-26; make it with: manage.py generate"):
        run("show_report", "daily", "--date", "2025-11-26")


def test_backfill_queues_the_days_as_a_batch_and_shows_progress_until_done(worker):
    # Given paid orders on three days
    product = make_product(price=Decimal("10.00"))
    for day in (1, 2, 3):
        place_order(at=berlin(2025, 3, day, 12, 0), lines=[(product, day)])

    # When the three days are backfilled, with workers running the jobs
    out, err = run("backfill_reports", "--from", "2025-03-01", "--to", "2025-03-03")

    # Then the command waited for all three, drawing the bar up to 3/3, and they are stored
    batch = Batch.objects.get()
    assert out.splitlines() == [
        f"Batch {batch.pk}: 3 daily report(s) queued, 2025-03-01 to 2025-03-03.",
        "Done: 3 succeeded, 0 failed.",
    ]
    assert "3/3" in err.rsplit("\r", 1)[-1]
    assert {report.date.day: report.data["revenue"] for report in Report.objects.all()} == {
        1: "10.00",
        2: "20.00",
        3: "30.00",
    }
    assert mail.outbox == []


@pytest.mark.django_db
def test_backfill_stops_watching_at_the_timeout_and_the_batch_goes_on(jobs, django_capture_on_commit_callbacks):
    # Given no worker running, when two days are backfilled with a short timeout
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(CommandError, match=r"Timed out with 0 of 2 done; batch \d+ goes on in the workers") as error,
    ):
        run("backfill_reports", "--from", "2025-03-01", "--to", "2025-03-02", "--timeout", "0.1", "--mail")

    # Then the command gave up watching with status 1, and the two jobs wait for the workers
    assert error.value.returncode == 1
    assert {job.kwargs["date"] for job in jobs.enqueued(generate_daily_report)} == {"2025-03-01", "2025-03-02"}
    assert {job.kwargs["mail"] for job in jobs.enqueued(generate_daily_report)} == {True}


@pytest.mark.django_db
def test_backfill_of_a_batch_cancelled_from_the_console_ends_with_an_error(
    jobs, monkeypatch, django_capture_on_commit_callbacks
):
    # Given a backfill whose batch staff cancel from the console as soon as it is queued
    from reports.management.commands import backfill_reports

    def queued_then_cancelled(**options):
        batch = report_daily_backfill(**options)
        cancel_batch(batch.pk)
        return batch

    monkeypatch.setattr(backfill_reports, "report_daily_backfill", queued_then_cancelled)

    # When the command watches it, then it stops at once with status 1, saying how to resume
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(CommandError, match=r"Batch \d+ was cancelled; run the command again") as error,
    ):
        run("backfill_reports", "--from", "2025-03-01", "--to", "2025-03-02")
    assert error.value.returncode == 1

    # And its waiting jobs, when they come up, are counted as cancelled, not failed
    jobs.drain()
    batch = Batch.objects.get()
    assert (batch.status, batch.failed, batch.cancelled) == (Batch.Status.CANCELLED, 0, 2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["generate_report", "daily", "--date", "2025-13-01"], "--date: '2025-13-01' is not a date (YYYY-MM-DD)"),
        (["generate_report", "daily", "--date", "{tomorrow}"], "--date: {tomorrow} has not ended yet in Europe/Berlin"),
        (["generate_report", "daily", "--date", "{today}"], "--date: {today} has not ended yet in Europe/Berlin"),
        (["show_report", "daily", "--date", "27.11.2025"], "--date: '27.11.2025' is not a date (YYYY-MM-DD)"),
        (["generate_report", "daily", "--date", "20261127"], "--date: '20261127' is not a date (YYYY-MM-DD)"),
        (["generate_report", "daily", "--date", "2026-W48-1"], "--date: '2026-W48-1' is not a date (YYYY-MM-DD)"),
        (["generate_report", "daily", "--date", "0001-01-01"], "--date: 0001-01-01 is before 1970-01-01, the earliest"),
        (["backfill_reports", "--from", "0001-01-01", "--to", "0001-01-02"], "--from: 0001-01-01 is before 1970-01-01"),
        (["backfill_reports", "--from", "2025-03-02", "--to", "2025-03-01"], "--from 2025-03-02 is after --to"),
        (["backfill_reports", "--from", "2025-03-01", "--to", "{tomorrow}"], "--to: {tomorrow} has not ended yet"),
        (["backfill_reports", "--from", "March", "--to", "2025-03-01"], "--from: 'March' is not a date"),
    ],
)  # fmt: skip
def test_bad_dates_end_the_command_with_a_clear_error_and_status_2(args, message):
    today = timezone.localdate()
    dates = {"today": today.isoformat(), "tomorrow": (today + timedelta(days=1)).isoformat()}
    with pytest.raises(CommandError) as error:
        run(*[arg.format(**dates) for arg in args])
    assert message.format(**dates) in str(error.value)
    assert error.value.returncode == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["generate_report", "daily", "--date", "2025-02-30"], "CommandError: --date: '2025-02-30' is not a date"),
        (["generate_report", "weekly"], "argument type: invalid choice: 'weekly'"),
        (["backfill_reports", "--from", "2025-03-01"], "the following arguments are required: --to"),
    ],
)
def test_from_the_command_line_the_exit_status_is_2_with_the_error_on_stderr(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        ManagementUtility(["manage.py", *argv]).execute()
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
