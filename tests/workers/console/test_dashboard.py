"""The jobs dashboard: numbers from the broker and the database, behind a permission."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from tests.support import tasks
from workers.models import DeadLetter, OutboxMessage
from workers.queue_counts import queue_stats

pytestmark = pytest.mark.django_db


def test_the_dashboard_needs_the_permission(client):
    client.force_login(User.objects.create_user("clerk", password="pw", is_staff=True))
    assert client.get("/admin/jobs/dashboard/").status_code == 403


def test_the_dashboard_shows_waiting_jobs_and_recent_failures(client, jobs):
    # Given three waiting jobs, one delayed, and a recent dead letter
    user = User.objects.create_user("ops", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_deadletter"))
    client.force_login(user)
    for _ in range(3):
        tasks.noop.send("k")
    tasks.noop.send_with_options(args=("k",), delay=60_000)
    DeadLetter.objects.create(
        message_id="m1", actor_name="process_payment", queue_name="urgent", message={}, reason="exhausted", error="x"
    )

    # When staff open the dashboard
    page = client.get("/admin/jobs/dashboard/").content.decode()

    # Then the default queue shows them, and the failure is listed
    default = next(q for q in queue_stats() if q.name == "default")
    assert (default.ready, default.scheduled) == (3, 1)
    assert '<td>default</td><td>3</td><td class="ready">3</td><td>1</td>' in page
    assert "<td>process_payment</td><td>exhausted</td><td>1</td>" in page
    assert "/admin/workers/deadletter/?actor_name=process_payment&amp;reason__exact=exhausted" in page


def test_the_dashboard_lists_only_the_failures_left_to_act_on(client, jobs):
    user = User.objects.create_user("ops", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_deadletter"))
    client.force_login(user)
    for number, state in enumerate(["open", "replayed", "resolved"]):
        DeadLetter.objects.create(
            message_id=f"m{number}",
            actor_name=f"{state}_actor",
            queue_name="default",
            message={},
            reason="exhausted",
            error="x",
            replayed_at=timezone.now() if state == "replayed" else None,
            resolved_at=timezone.now() if state == "resolved" else None,
        )

    page = client.get("/admin/jobs/dashboard/").content.decode()

    assert "<td>open_actor</td>" in page
    assert "replayed_actor" not in page and "resolved_actor" not in page


@pytest.mark.delivery
def test_queue_stats_read_a_real_redis(redis_broker):
    for _ in range(4):
        redis_broker.enqueue(tasks.noop.message("k"))
    redis_broker.enqueue(tasks.noop.message("k"), delay=60_000)
    default = next(q for q in queue_stats(redis_broker) if q.name == "default")
    assert (default.ready, default.scheduled, default.running, default.dead) == (4, 1, 0, 0)


def test_the_dashboard_shows_jobs_waiting_in_the_outbox(admin_client):
    for number in range(2):
        OutboxMessage.objects.create(message=tasks.noop.message(f"k{number}").asdict())
    OutboxMessage.objects.update(created_at=timezone.now() - timedelta(minutes=5))

    page = admin_client.get("/admin/jobs/dashboard/").content.decode()

    assert '(outbox): <span class="outbox">2</span>' in page
    assert "the oldest waiting 5\xa0minutes" in page


def test_the_admin_index_links_the_dashboard_for_those_allowed(admin_client):
    assert 'href="/admin/jobs/dashboard/"' in admin_client.get("/admin/").content.decode()


def test_a_queues_latency_counts_a_delayed_job_from_the_end_of_its_delay(redis_broker):
    # Given the oldest ready job of a queue, sent ten minutes ago with a delay that ended 3 s ago
    now_ms = int(time.time() * 1000)
    message = tasks.noop.message("k").copy(message_timestamp=now_ms - 600_000, options={"eta": now_ms - 3_000})
    redis_broker.enqueue(message)

    # When the queue's figures are read, then it has waited since its delay ended, not since its send
    default = next(q for q in queue_stats(redis_broker) if q.name == "default")
    assert default.ready == 1
    assert 3 <= default.latency < 60
