"""The console at scale: delayed jobs listed a page at a time, queue counts without reading every body, and the
dead letters list without a scan per filter or a full count."""

from __future__ import annotations

import time
from datetime import timedelta

import dramatiq
import pytest
from django.utils import timezone

from tests.support import tasks
from tests.support.users import login_staff
from workers import dead_letter_admin, queue_counts
from workers.console import scheduled
from workers.delayed_jobs import delayed_page
from workers.dramatiq_internals.keys import acks_key, dq_name, heartbeats_key, queue_key
from workers.models import DeadLetter
from workers.queue_counts import queue_stats

pytestmark = pytest.mark.django_db

SCHEDULED = "/admin/jobs/scheduled/"
DEAD_LETTERS = "/admin/workers/deadletter/"
WORKER_ID = "live-worker"


@pytest.fixture
def live_broker(redis_broker):
    previous = dramatiq.get_broker()
    dramatiq.set_broker(redis_broker)
    yield redis_broker
    dramatiq.set_broker(previous)


def delay(broker, count: int, *, retrying_every: int = 0) -> None:
    for number in range(count):
        message = tasks.noop.message(number)
        if retrying_every and number % retrying_every == 0:
            message = message.copy(options={**message.options, "retries": 1, "traceback": "E\nTimeout: slow"})
        broker.enqueue(message, delay=60_000 + number * 1000)


def hold(broker, count: int) -> None:
    """A live worker takes ``count`` delayed jobs of the default queue into its memory, as Dramatiq's consumer does."""
    client = broker.client
    ids = client.lpop(queue_key(broker, dq_name("default")), count)
    client.sadd(acks_key(broker, WORKER_ID, dq_name("default")), *ids)
    client.zadd(heartbeats_key(broker), {WORKER_ID: int(time.time() * 1000)})


@pytest.mark.delivery
def test_delayed_jobs_are_read_a_page_at_a_time_in_the_order_they_wait(live_broker):
    # Given 12 delayed jobs, 4 of them taken by a live worker
    delay(live_broker, 12)
    hold(live_broker, 4)

    # When they are read 5 at a time
    pages = [delayed_page(live_broker, "default", offset=offset, limit=5) for offset in (0, 5, 10, 15)]

    # Then the delay queue's 8 come first, then the worker's 4, each page soonest due first, none twice
    assert [len(page.jobs) for page in pages] == [5, 5, 2, 0] and {page.total for page in pages} == {12}
    assert [job.held_by for job in pages[1].jobs].count(f"worker {WORKER_ID}") == 2
    assert [job.held_by for job in pages[2].jobs] == [f"worker {WORKER_ID}"] * 2
    assert all(page.jobs == sorted(page.jobs, key=lambda job: job.eta) for page in pages)
    assert len({job.message_id for page in pages for job in page.jobs}) == 12


@pytest.mark.delivery
def test_the_scheduled_page_lists_a_page_and_links_the_next(live_broker, client, monkeypatch):
    # Given more delayed jobs than a page holds
    monkeypatch.setattr(scheduled, "LIST_LIMIT", 5)
    delay(live_broker, 7)
    login_staff(client, "view_console_scheduled")

    # When the first and the second page are opened
    first = client.get(SCHEDULED).content.decode()
    second = client.get(SCHEDULED, {"page": "2"}).content.decode()

    # Then the first shows 5 and links the later ones, the second the other 2 and links back
    assert first.count('class="eta"') == 5 and "Jobs 1 to 5 of 7" in first and "page=2" in first
    assert second.count('class="eta"') == 2 and "Jobs 6 to 7 of 7" in second and "page=1" in second


@pytest.mark.delivery
def test_queue_counts_read_bodies_to_tell_retrying_only_below_their_limit(live_broker, monkeypatch):
    # Given 6 delayed jobs, every third one retrying, and 2 of them held by a live worker
    delay(live_broker, 6, retrying_every=3)
    hold(live_broker, 2)

    # When the queues are counted with room for them all, then with room for fewer
    counted = next(stats for stats in queue_stats(live_broker) if stats.name == "default")
    monkeypatch.setattr(queue_counts, "RETRYING_READ_LIMIT", 5)
    past_limit = next(stats for stats in queue_stats(live_broker) if stats.name == "default")

    # Then both count all 6 as scheduled; only the first reads which are retrying
    assert (counted.scheduled, counted.retrying) == (6, 2)
    assert (past_limit.scheduled, past_limit.retrying) == (6, None)


def dead_letters(count: int, actors: tuple[str, ...]) -> None:
    DeadLetter.objects.bulk_create(
        DeadLetter(
            message_id=f"m-{number}",
            actor_name=actors[number % len(actors)],
            queue_name="default",
            message={},
            reason="exhausted",
            error=f"GatewayTimeout: order {number}",
        )
        for number in range(count)
    )


def test_the_dead_letters_list_offers_each_actor_and_counts_past_its_cap_as_or_more(admin_client, monkeypatch):
    # Given 12 dead letters of three actors, and a count that stops at 10
    dead_letters(12, ("send_email", "process_payment", "import_data"))
    monkeypatch.setattr(dead_letter_admin.CappedCountPaginator, "COUNT_CAP", 10)

    # When the list is opened, then searched for one order
    page = admin_client.get(DEAD_LETTERS).content.decode()
    searched = admin_client.get(DEAD_LETTERS, {"q": "order 7"}).content.decode()

    # Then every actor is a filter choice, and the count says it stopped, the bulk links too
    for actor in ("import_data", "process_payment", "send_email"):
        assert f"?actor_name={actor}" in page
    assert "10 or more dead letters" in page and "Replay all 10 or more matching" in page
    assert "1 dead letter" in searched and "Replay all 1 matching" in searched


def test_words_are_searched_in_the_last_week_and_a_whole_message_id_at_any_age(admin_client):
    # Given two dead letters of the same error, one a month old
    dead_letters(2, ("send_email",))
    DeadLetter.objects.filter(message_id="m-1").update(failed_at=timezone.now() - timedelta(days=30))

    # When the list is searched for the error, then for the old one's message id
    by_words = admin_client.get(DEAD_LETTERS, {"q": "GatewayTimeout"}).context["cl"].result_list
    by_id = admin_client.get(DEAD_LETTERS, {"q": "m-1"}).context["cl"].result_list

    # Then the words find the recent one only, the message id the old one
    assert [each.message_id for each in by_words] == ["m-0"]
    assert [each.message_id for each in by_id] == ["m-1"]
