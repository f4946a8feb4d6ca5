"""The dead letters page: replay behind its permission, with a plain word for what it skipped."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages

from tests.support import tasks
from tests.support.users import login_staff
from workers import dead_letters
from workers.models import DeadLetter

pytestmark = pytest.mark.django_db

URL = "/admin/workers/deadletter/"


def failed(message) -> DeadLetter:
    dead_letters.record(message, ConnectionError("still down"), "exhausted")
    return DeadLetter.objects.get(message_id=message.message_id)


def test_replay_sends_the_job_again_once_and_says_what_it_skipped(client, jobs, django_capture_on_commit_callbacks):
    # Given a dead letter, one replayed before, and one the broker refused unread
    fresh = failed(tasks.noop.message("again"))
    replayed = failed(tasks.noop.message("before"))
    dead_letters.replay(replayed)
    jobs.clear()
    dead_letters.record_refused(
        data=b"not json", reason="malformed_message", error="not JSON", queue_name="default", message_id="raw-1"
    )
    login_staff(client, "view_deadletter", "replay_deadletter")

    # When staff replay all three
    ids = [str(pk) for pk in DeadLetter.objects.values_list("pk", flat=True)]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(URL, {"action": "replay", "_selected_action": ids}, follow=True)

    # Then only the fresh one is queued again, and the page says why the others were skipped
    assert response.status_code == 200
    assert [job.args for job in jobs.enqueued(tasks.noop)] == [("again",)]
    fresh.refresh_from_db()
    assert fresh.replayed_at is not None
    texts = [str(message) for message in get_messages(response.wsgi_request)]
    assert "1 job(s) queued again." in texts
    assert "1 job(s) skipped: replayed before." in texts
    assert any("refused them unread (raw-1)" in text for text in texts)

    # And a second click changes nothing
    with django_capture_on_commit_callbacks(execute=True):
        client.post(URL, {"action": "replay", "_selected_action": ids}, follow=True)
    assert len(jobs.enqueued(tasks.noop)) == 1


def test_replay_needs_its_permission(client, jobs):
    failed(tasks.noop.message("again"))
    login_staff(client, "view_deadletter")
    ids = [str(pk) for pk in DeadLetter.objects.values_list("pk", flat=True)]
    client.post(URL, {"action": "replay", "_selected_action": ids})
    jobs.assert_nothing_enqueued()
    assert DeadLetter.objects.get().replayed_at is None
