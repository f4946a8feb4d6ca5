"""Job history and metrics: recorded in bulk by real workers, shown and searched on the console's pages."""

from __future__ import annotations

import time
from datetime import timedelta
from types import SimpleNamespace
from unittest import mock

import pytest
from django.db import DatabaseError
from django.urls import reverse
from django.utils import timezone

from tests.support import tasks
from tests.support.users import login_staff
from workers.durations import percentile_ms
from workers.history import HistoryBuffer
from workers.history_prune import history_prune
from workers.history_rows import args_hash
from workers.middleware import Cancellation, JobHistory
from workers.models import JobMinute, JobRun
from workers.testing import wait_until

HISTORY = "view_console_history"
METRICS = "view_console_metrics"


def message(actor="noop", *, message_id="m-1", args=("a",), kwargs=None, queue="default"):
    return SimpleNamespace(
        message_id=message_id,
        actor_name=actor,
        queue_name=queue,
        args=args,
        kwargs=kwargs or {},
        options={},
    )


def recorded_run(buffer, outcome="succeeded", *, error="", ago_s=0.0, duration_s=0.01, **fields) -> None:
    finished = time.time() - ago_s
    buffer.add(message(**fields), outcome, 1, finished - duration_s, finished, error)


@pytest.mark.delivery
def test_a_real_worker_records_succeeded_retried_and_failed_runs(start_worker, redis_broker, redis_url, client):
    # Given a worker and three jobs: one succeeds, one fails once then succeeds, one fails for good
    start_worker(redis_url=redis_url)
    ok = redis_broker.enqueue(tasks.noop.message("history-ok"))
    flaky = redis_broker.enqueue(tasks.flaky.message("history-flaky", 1))
    failing = redis_broker.enqueue(tasks.always_fails.message(key="history-failing"))

    # When they have run to their end, the worker's history thread writes them within seconds
    def runs_of(message_id):
        return list(JobRun.objects.filter(message_id=message_id).order_by("attempt").values_list("outcome", "attempt"))

    wait_until(lambda: runs_of(flaky.message_id) == [("retrying", 1), ("succeeded", 2)], timeout=30, what="flaky")
    wait_until(lambda: len(runs_of(failing.message_id)) == 2, timeout=30, what="failing's two runs")

    # Then each run is there with its outcome, attempt, error and argument hash
    assert runs_of(ok.message_id) == [("succeeded", 1)]
    assert runs_of(failing.message_id) == [("retrying", 1), ("failed", 2)]
    last = JobRun.objects.get(message_id=failing.message_id, attempt=2)
    assert last.error == "ConnectionError: still down"
    assert last.args_hash == args_hash([], {"key": "history-failing"})
    assert last.actor_name == "always_fails" and last.queue_name == "default" and ":" in last.worker
    # And the metrics page counts them
    wait_until(
        lambda: sum(JobMinute.objects.filter(actor_name="always_fails").values_list("failed", flat=True)) == 1,
        timeout=10,
        what="the minute rows",
    )
    login_staff(client, METRICS)
    page = client.get(reverse("jobs-metrics"), {"actor": "always_fails"}).content.decode()
    assert "<svg" in page and "runs/min" in page and "p95" in page
    row = page.split("<td>always_fails</td>")[1].split("</tr>")[0]
    cells = [cell.split("</td>")[0] for cell in row.split('<td class="number">')[1:]]
    assert cells[:5] == ["2", "0", "1", "1", "0"]  # runs, succeeded, retried, failed for good, cancelled


@pytest.mark.django_db(transaction=True)
def test_the_history_page_finds_runs_by_message_id_argument_hash_and_error_text(client):
    # Given runs of several jobs
    buffer = HistoryBuffer(worker="host:1")
    recorded_run(buffer, message_id="first", args=(1,))
    recorded_run(buffer, "failed", message_id="second", args=(2,), actor="flaky", error="TimeoutError: gateway slow")
    recorded_run(buffer, message_id="third", args=(2,), actor="flaky")
    buffer.flush()
    login_staff(client, HISTORY)
    url = reverse("jobs-history")

    def shown(**query) -> set[str]:
        page = client.get(url, query).content.decode()
        return {mid for mid in ("first", "second", "third") if f"<code>{mid}</code>" in page}

    # Then a message id finds its run, a hash the runs with those arguments, a word the failed one
    assert shown() == {"first", "second", "third"}
    assert shown(q="second") == {"second"}
    assert shown(q=args_hash([2], {})) == {"second", "third"}
    assert shown(q="gateway slow") == {"second"}
    # And filters narrow it down
    assert shown(actor="flaky", outcome="succeeded") == {"third"}
    assert shown(q="nothing like it") == set()


@pytest.mark.django_db(transaction=True)
def test_the_history_pages_by_keyset_newest_first(client, monkeypatch):
    # Given five runs and pages of two
    monkeypatch.setattr("workers.console.history.PAGE_SIZE", 2)
    buffer = HistoryBuffer(worker="host:1")
    for number in range(5):
        recorded_run(buffer, message_id=f"run-{number}", ago_s=10 - number)
    buffer.flush()
    login_staff(client, HISTORY)

    # When the operator follows "Older runs" to the end
    seen, response = [], client.get(reverse("jobs-history"))
    while True:
        page = response.content.decode()
        seen += [f"run-{n}" for n in range(4, -1, -1) if f"<code>run-{n}</code>" in page]
        if "Older runs" not in page:
            break
        href = page.split('<a href="')[-1].split('">Older runs')[0].replace("&amp;", "&")
        response = client.get(reverse("jobs-history") + href)

    # Then every run was shown once, newest first
    assert seen == ["run-4", "run-3", "run-2", "run-1", "run-0"]


@pytest.mark.django_db(transaction=True)
def test_error_texts_are_redacted_and_escaped_on_the_page(client):
    buffer = HistoryBuffer(worker="host:1")
    error = "ValueError: <script>alert(1)</script> for ann@example.com card 4111 1111 1111 1111"
    recorded_run(buffer, "failed", message_id="leaky", error=error)
    buffer.flush()
    login_staff(client, HISTORY)

    page = client.get(reverse("jobs-history")).content.decode()

    assert "ann@example.com" not in page and "4111 1111" not in page
    assert "[email]" in page and "[card]" in page
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page


@pytest.mark.django_db(transaction=True)
def test_the_buffer_keeps_its_runs_while_the_database_is_away():
    # Given two runs and a database that refuses the first write
    buffer = HistoryBuffer(worker="host:1")
    recorded_run(buffer, message_id="kept-1")
    recorded_run(buffer, "retrying", message_id="kept-2", error="OSError: x")
    with mock.patch("workers.history.runs_insert", side_effect=DatabaseError("server closed")):
        with pytest.raises(DatabaseError):
            buffer.flush()
    assert not JobRun.objects.exists()

    # When it is back and one more run finished meanwhile
    recorded_run(buffer, message_id="kept-3")
    assert buffer.flush() == 3

    # Then every run is written once, in order, and the minute counts all of them
    assert list(JobRun.objects.order_by("id").values_list("message_id", flat=True)) == ["kept-1", "kept-2", "kept-3"]
    minute = JobMinute.objects.get()
    assert (minute.succeeded, minute.retried, sum(minute.durations)) == (2, 1, 3)


@pytest.mark.django_db(transaction=True)
def test_a_full_buffer_drops_its_oldest_runs_and_says_how_many(caplog):
    buffer = HistoryBuffer(worker="host:1", capacity=3)
    for number in range(5):
        recorded_run(buffer, message_id=f"run-{number}")

    buffer.flush()

    assert list(JobRun.objects.order_by("id").values_list("message_id", flat=True)) == ["run-2", "run-3", "run-4"]
    assert "dropped the 2 oldest run(s), 2 in all" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_each_flush_overwrites_the_process_minute_rows_with_running_totals():
    buffer = HistoryBuffer(worker="host:1")
    recorded_run(buffer)
    buffer.flush()
    recorded_run(buffer, "failed", error="E: x")
    recorded_run(buffer, "cancelled")
    buffer.flush()
    other = HistoryBuffer(worker="host:2")
    recorded_run(other)
    other.flush()

    mine = JobMinute.objects.get(worker="host:1")
    assert (mine.succeeded, mine.failed, mine.cancelled, sum(mine.durations)) == (1, 1, 1, 3)
    assert JobMinute.objects.get(worker="host:2").succeeded == 1


@pytest.mark.django_db
def test_retention_deletes_runs_older_than_the_history_days_and_minutes_older_than_72_hours(settings):
    settings.JOB_HISTORY_DAYS = 7
    now = timezone.now()
    for days in (1, 6, 8, 30):
        JobRun.objects.create(
            message_id=f"{days}d",
            actor_name="a",
            queue_name="q",
            outcome="succeeded",
            finished_at=now - timedelta(days=days),
        )
    for hours in (1, 71, 73):
        JobMinute.objects.create(minute=now - timedelta(hours=hours), actor_name="a", queue_name="q", worker="w")

    pruned = history_prune(chunk_size=1)

    assert pruned == {"runs": 2, "minutes": 1}
    assert sorted(JobRun.objects.values_list("message_id", flat=True)) == ["1d", "6d"]
    assert JobMinute.objects.count() == 2


def test_percentiles_come_from_the_duration_histogram():
    # 10 runs under 5 ms and 10 between 100 and 250 ms
    histogram = [10, 0, 0, 0, 0, 10] + [0] * 9
    assert percentile_ms(histogram, 0.5) == 5
    assert percentile_ms(histogram, 0.95) == 235  # 100 ms + 9/10 of the way to 250 ms
    assert percentile_ms([0] * 15, 0.5) is None


@pytest.mark.django_db
@pytest.mark.parametrize(("page", "permission"), [("jobs-history", HISTORY), ("jobs-metrics", METRICS)])
def test_each_page_needs_its_own_permission(client, page, permission):
    other = METRICS if permission == HISTORY else HISTORY
    login_staff(client, other)
    assert client.get(reverse(page)).status_code == 403

    login_staff(client, permission, username="allowed")
    assert client.get(reverse(page), {"window": "72h"}).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_job_cancelled_before_it_started_is_recorded_cancelled_and_other_skips_skipped():
    # Given the history middleware of a worker whose Cancellation middleware knows one cancelled job
    cancellation = Cancellation()
    cancellation.cancelled["cancelled-one"] = 1
    broker = SimpleNamespace(middleware=[cancellation])
    history = JobHistory()
    history.buffer = HistoryBuffer(worker="host:1")

    # When both are skipped
    history.after_skip_message(broker, message(message_id="cancelled-one"))
    history.after_skip_message(broker, message(message_id="too-old"))
    history.buffer.flush()

    # Then the history tells them apart
    assert dict(JobRun.objects.values_list("message_id", "outcome")) == {
        "cancelled-one": "cancelled",
        "too-old": "skipped",
    }
