"""The operator console in a real headless Chromium, against the live app, a real worker and a real Redis."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.screen import cell, screenshot
from tests.support import tasks
from workers import dead_letters
from workers.console.pages import PAGES
from workers.models import DeadLetter, JobRun
from workers.testing import wait_until

pytestmark = pytest.mark.delivery

# The heading each tab's page opens with.
HEADINGS = {
    "Overview": "Jobs: overview",
    "Queues": "Jobs: queues",
    "Running": "Jobs: running",
    "Workers": "Jobs: workers",
    "History": "Jobs: history",
    "Metrics": "Jobs: metrics",
    "Scheduled": "Jobs: scheduled and retrying",
    "Schedule": "Jobs: schedule",
}
# What each page shows of the tour's jobs: three noop runs done, one due tomorrow on the default queue.
SHOWS = {
    "Overview": lambda page: expect(cell(page, "default", "Scheduled")).to_have_text("1"),
    "Queues": lambda page: expect(cell(page, "default", "Scheduled")).to_have_text("1"),
    "Running": lambda page: expect(page.get_by_text("No job is running.")).to_be_visible(),
    "Scheduled": lambda page: expect(cell(page, "noop", "Queue")).to_have_text("default"),
    "Workers": lambda page: expect(cell(page, None, "Jobs done")).to_have_text(["3"]),
    "History": lambda page: expect(cell(page, "noop", "Outcome")).to_have_text(["Succeeded"] * 3),
    "Metrics": lambda page: expect(cell(page, "noop", "Succeeded")).to_have_text("3"),
    "Schedule": lambda page: expect(cell(page, "generate_daily_report", "Schedule")).to_have_text("5 0 * * *"),
}
A_DAY = 24 * 3600 * 1000  # in milliseconds


def test_an_operator_logs_in_and_opens_every_tab(console, live_broker, start_worker, redis_url):
    # Given a worker that ran a few jobs, a job due tomorrow and one that failed for good
    start_worker(redis_url=redis_url)
    for number in range(3):
        live_broker.enqueue(tasks.noop.message(f"e2e-tour-{number}"))
    live_broker.enqueue(tasks.noop.message("e2e-tour-tomorrow"), delay=A_DAY)
    dead_letters.record(tasks.always_fails.message(key="e2e-tour"), ConnectionError("still down"), "exhausted")
    wait_until(lambda: JobRun.objects.filter(actor_name="noop").count() == 3, timeout=30, what="three runs recorded")
    tabs = console.get_by_role("navigation", name="Jobs console").get_by_role("link")

    # Then the console offers every page, in order
    expect(tabs).to_have_text([page.title for page in PAGES])
    assert set(HEADINGS) <= set(tabs.all_text_contents())

    # And each tab opens its page, marked as the current one, under its heading, showing those jobs
    for title in tabs.all_text_contents():
        tabs.get_by_text(title, exact=True).click()
        expect(tabs.get_by_text(title, exact=True)).to_have_attribute("aria-current", "page")
        heading = console.get_by_role("heading", level=1)
        if title in HEADINGS:
            expect(heading).to_have_text(HEADINGS[title])
            SHOWS[title](console)
        else:  # a page newer than this test: it opens, under a heading of its own
            expect(heading).to_contain_text("Jobs")
        screenshot(console, re.search(r"/admin/jobs/([\w-]+)/", console.url).group(1))


def test_a_job_is_seen_queued_then_running_then_done_on_pages_that_refresh_in_place(
    console, live_broker, start_worker, redis_url
):
    # Given the queues page open, and no worker yet
    console.get_by_role("link", name="Queues", exact=True).click()
    ready = cell(console, "low", "Ready")
    expect(ready).to_have_text("0")

    # When a slow job is queued, the page shows it waiting
    live_broker.enqueue(tasks.slow.message("e2e-lifecycle", 6))
    expect(ready).to_have_text("1")

    # And on the running page (a mark on the window tells a reload apart from a refresh in place),
    # a worker that starts is seen running it, then done with it
    console.get_by_role("link", name="Running", exact=True).click()
    expect(console.get_by_text("No job is running.")).to_be_visible()
    console.evaluate("window.notReloaded = true")
    start_worker(redis_url=redis_url)
    expect(cell(console, "slow", "Queue")).to_have_text("low", timeout=30_000)
    screenshot(console, "running")
    expect(console.get_by_text("No job is running.")).to_be_visible(timeout=30_000)
    assert console.evaluate("window.notReloaded") is True

    # And the history lists its run as a success
    console.get_by_role("link", name="History", exact=True).click()
    expect(cell(console, "slow", "Outcome")).to_have_text("Succeeded", timeout=30_000)
    assert len(tasks.recorded("e2e-lifecycle")) == 1


def test_a_paused_queue_keeps_its_jobs_until_it_is_resumed(console, live_broker, start_worker, redis_url):
    # Given a worker, and the queues page
    worker = start_worker(redis_url=redis_url)
    console.get_by_role("link", name="Queues", exact=True).click()
    low = console.locator("tr", has=console.get_by_role("cell", name="low", exact=True))

    # When the operator pauses the low queue and a job is queued on it
    low.get_by_role("button", name="Pause").click()
    expect(console.get_by_text("Paused queue low")).to_be_visible()
    expect(cell(console, "low", "State")).to_have_text("paused")
    worker.wait_for_log(r"Queue 'low' is paused: taking none of its messages")  # it checks every so often
    live_broker.enqueue(tasks.slow.message("e2e-paused", 0))

    # Then it waits there while the worker is up, seconds on end
    expect(cell(console, "low", "Ready")).to_have_text("1")
    expect(cell(console, "low", "Oldest ready job waiting")).to_have_text(
        re.compile(r"^\s*([3-9]|\d\d) s\s*$"), timeout=20_000
    )
    screenshot(console, "queues")
    assert not tasks.recorded("e2e-paused")

    # And once resumed, it runs
    low.get_by_role("button", name="Resume").click()
    expect(console.get_by_text("Resumed queue low")).to_be_visible()
    expect(cell(console, "low", "State")).to_have_text("running")
    expect(cell(console, "low", "Ready")).to_have_text("0", timeout=30_000)
    wait_until(lambda: tasks.recorded("e2e-paused"), timeout=30, what="the job of the resumed queue")


def test_a_cancelled_delayed_job_never_runs(console, live_broker, start_worker, redis_url):
    # Given two jobs due in a moment, and no worker yet
    doomed = live_broker.enqueue(tasks.noop.message("e2e-cancelled"), delay=1000)
    kept = live_broker.enqueue(tasks.noop.message("e2e-kept"), delay=1000)

    # When the operator ticks one on the scheduled page and cancels it
    console.get_by_role("link", name="Scheduled", exact=True).click()
    console.get_by_role("checkbox", name=f"Select noop {doomed.message_id}").check()
    screenshot(console, "scheduled")
    console.get_by_role("button", name="Cancel selected").click()
    expect(console.get_by_text("Cancelled 1 job(s)")).to_be_visible()

    # Then, once a worker is up and both are due, the other one runs and the cancelled one does not
    worker = start_worker(redis_url=redis_url)
    expect(console.get_by_text("No delayed job.")).to_be_visible(timeout=30_000)
    worker.wait_for_log(rf"job cancelled actor=noop queue=default message_id={doomed.message_id}: asked before")
    console.get_by_role("link", name="History", exact=True).click()
    expect(cell(console, kept.message_id, "Outcome")).to_have_text("Succeeded", timeout=30_000)
    expect(cell(console, doomed.message_id, "Outcome")).to_have_text("Cancelled")
    assert not tasks.recorded("e2e-cancelled")
    assert len(tasks.recorded("e2e-kept")) == 1


def test_an_operator_replays_the_dead_letters_of_one_filter_and_they_succeed(
    console, live_broker, start_worker, redis_url, live_server
):
    # Given three jobs that failed for good after their retries, and two a worker discarded
    for number in range(3):
        dead_letters.record(tasks.noop.message(f"e2e-exhausted-{number}"), ConnectionError("down"), "exhausted")
    for number in range(2):
        dead_letters.record(tasks.noop.message(f"e2e-discarded-{number}"), KeyError("gone"), "discarded")
    start_worker(redis_url=redis_url)

    # When the operator filters the dead letters on that reason and replays every match
    console.goto(f"{live_server.url}/admin/workers/deadletter/")
    console.get_by_role("link", name="Retries exhausted", exact=True).click()
    expect(console.get_by_text("3 dead letters")).to_be_visible()
    screenshot(console, "dead-letters")
    console.get_by_role("link", name="Replay all 3 matching").click()
    console.get_by_role("button", name="Yes, replay 3").click()
    expect(console.get_by_text(re.compile(r"Replay of 3 dead letters started as batch \d+"))).to_be_visible()

    # Then the history shows the three run again, and succeed
    console.goto(f"{live_server.url}/admin/jobs/history/")
    console.get_by_label("Actor").select_option("noop")
    console.get_by_role("button", name="Show").click()
    expect(cell(console, "noop", "Outcome")).to_have_text(["Succeeded"] * 3, timeout=30_000)
    assert [len(tasks.recorded(f"e2e-exhausted-{number}")) for number in range(3)] == [1, 1, 1]
    # And the two discarded ones were left alone
    assert DeadLetter.objects.filter(reason="discarded", replayed_at__isnull=True).count() == 2
    assert not tasks.recorded("e2e-discarded-0") and not tasks.recorded("e2e-discarded-1")
