"""Dead letters in bulk: every match of the list's filter replayed, resolved or deleted as a batch, once."""

from __future__ import annotations

import dramatiq
import pytest
from django.contrib.messages import get_messages

from tests.support import tasks
from tests.support.users import login_staff
from workers.models import Batch, DeadLetter, OperatorAction
from workers.tasks import apply_dead_letter_action
from workers.testing import declare_actors, wait_until

pytestmark = pytest.mark.django_db

URL = "/admin/workers/deadletter/"


@pytest.fixture
def sent_on_commit(django_capture_on_commit_callbacks):
    """Run what a request queues after commit (the test's transaction never commits)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def dead(messages, reason: str = "exhausted") -> None:
    """Dead letters for these messages, written as the platform writes them."""
    DeadLetter.objects.bulk_create(
        DeadLetter(
            message_id=message.message_id,
            actor_name=message.actor_name,
            queue_name=message.queue_name,
            message={**message.asdict(), "args": list(message.args)},
            reason=reason,
            error="ConnectionError: still down",
        )
        for message in messages
    )


def confirm(client, action: str, query: str) -> dict:
    """Open the confirm page of ``action`` for the list filtered by ``query``; its page and the form to POST."""
    page = client.get(f"{URL}bulk/{action}/?{query}")
    assert page.status_code == 200
    return {"page": page.content.decode(), "form": {"query": query, "token": page.context["token"]}}


def texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.mark.delivery
def test_replay_of_every_match_runs_as_a_batch_on_a_real_worker_and_each_job_once(
    start_worker, redis_broker, redis_url, client, monkeypatch
):
    # Given 2,500 dead letters of one actor, five of another, and staff who may replay
    dead(tasks.batch_member.message("replayed", number, 0) for number in range(2500))
    dead(tasks.noop.message("not-replayed") for _ in range(5))
    user = login_staff(client, "view_deadletter", "replay_deadletter")
    # The web side sends through the workers' Redis (this process's own broker is the StubBroker).
    declare_actors(redis_broker, apply_dead_letter_action)
    monkeypatch.setattr(dramatiq, "get_broker", lambda: redis_broker)
    start_worker(redis_url=redis_url, threads=8)

    # When they filter the list by the first actor, follow "Replay all 2500 matching" and confirm
    listing = client.get(f"{URL}?actor_name=batch_member").content.decode()
    assert f'href="{URL}bulk/replay/?actor_name=batch_member">Replay all 2500 matching</a>' in listing
    step = confirm(client, "replay", "actor_name=batch_member")
    assert (
        '<strong class="bulk-count">2500</strong> dead letters matching this filter: open, actor batch_member'
        in (step["page"])
    )
    response = client.post(f"{URL}bulk/replay/", step["form"], follow=True)

    # Then a batch of three chunk jobs on the low queue replays them all and succeeds
    batch = Batch.objects.get()
    assert any("Replay of 2500 dead letters started as" in text for text in texts(response))
    wait_until(lambda: Batch.objects.get(pk=batch.pk).finished_at is not None, timeout=90, what="the batch to end")
    batch.refresh_from_db()
    assert (batch.status, batch.total, batch.succeeded) == (Batch.Status.SUCCEEDED, 3, 3)
    assert batch.description == "Dead letters: replay 2500 (open, actor batch_member)"
    # And every job ran again exactly once; the other actor's were left alone
    store = tasks.store()

    def runs() -> list[int]:
        with store.pipeline() as pipe:
            for number in range(2500):
                pipe.llen(f"replayed:{number}")
            return pipe.execute()

    wait_until(lambda: sum(runs()) >= 2500, timeout=120, what="2,500 replayed jobs to run")
    assert set(runs()) == {1}
    assert DeadLetter.objects.filter(actor_name="batch_member", replayed_at__isnull=True).count() == 0
    assert DeadLetter.objects.filter(actor_name="noop", replayed_at__isnull=False).count() == 0
    # And the audit trail says who replayed how many, with what filter
    action = OperatorAction.objects.get()
    assert (action.user, action.action, action.count) == (user, "replay_dead_letters", 2500)
    assert action.target == "open, actor batch_member"
    assert action.detail["batch"] == batch.pk

    # And a second POST of the same form (a double click) does nothing
    again = client.post(f"{URL}bulk/replay/", step["form"], follow=True)
    assert "This confirmation was sent before; nothing more was done." in texts(again)
    assert Batch.objects.count() == 1
    assert OperatorAction.objects.count() == 1


def test_delete_of_every_match_deletes_only_the_filtered_dead_letters(client, perform_jobs, sent_on_commit):
    # Given dead letters of two reasons, and staff who may delete
    dead((tasks.noop.message("kept") for _ in range(30)), reason="exhausted")
    dead((tasks.noop.message("gone") for _ in range(12)), reason="discarded")
    login_staff(client, "view_deadletter", "delete_deadletter")

    # When they delete all matching the filter "reason: discarded"
    step = confirm(client, "delete", "reason__exact=discarded")
    assert '<strong class="bulk-count">12</strong>' in step["page"]
    with sent_on_commit():
        response = client.post(f"{URL}bulk/delete/", step["form"])
    assert response.status_code == 302
    assert response["Location"] == f"{URL}?reason__exact=discarded"
    perform_jobs()

    # Then those are gone, the others stay, and the batch and the audit trail say so
    assert set(DeadLetter.objects.values_list("reason", flat=True).distinct()) == {"exhausted"}
    assert DeadLetter.objects.count() == 30
    assert Batch.objects.get().status == Batch.Status.SUCCEEDED
    action = OperatorAction.objects.get()
    assert (action.action, action.count, action.target) == ("delete_dead_letters", 12, "open, reason discarded")


def test_resolved_dead_letters_leave_the_default_list_are_found_by_filter_and_are_not_replayed(
    client, perform_jobs, jobs, sent_on_commit
):
    # Given two dead letters found by a search, and one other
    dead([tasks.noop.message("a"), tasks.noop.message("b")])
    dead([tasks.flaky.message("c", 1)])
    login_staff(client, "view_deadletter", "replay_deadletter")

    # When staff resolve all matching the search "noop"
    step = confirm(client, "resolve", "q=noop")
    with sent_on_commit():
        client.post(f"{URL}bulk/resolve/", step["form"])
    perform_jobs()

    # Then the default list no longer shows them, the "Resolved" filter does
    assert DeadLetter.objects.filter(resolved_at__isnull=False).count() == 2
    listing = client.get(URL).content.decode()
    assert "Replay all 1 matching" in listing
    resolved = client.get(f"{URL}?status=resolved").content.decode()
    assert "Replay all 2 matching" in resolved
    # And a replay of the resolved ones sends nothing
    jobs.clear()
    step = confirm(client, "replay", "status=resolved")
    with sent_on_commit():
        client.post(f"{URL}bulk/replay/", step["form"])
    perform_jobs()
    assert DeadLetter.objects.filter(actor_name="noop", replayed_at__isnull=False).count() == 0
    assert not jobs.enqueued(tasks.noop)


def test_each_action_needs_its_own_permission(client):
    dead([tasks.noop.message("a")])
    login_staff(client, "view_deadletter", "replay_deadletter")

    # Staff who may replay see the replay and resolve links, not the delete one, and may not delete
    listing = client.get(URL).content.decode()
    assert "Replay all 1 matching" in listing and "Mark resolved all 1 matching" in listing
    assert "Delete all" not in listing
    assert client.get(f"{URL}bulk/delete/").status_code == 403
    assert client.post(f"{URL}bulk/delete/", {"query": "", "token": "t1"}).status_code == 403

    # And staff who may only look may do none of it
    login_staff(client, "view_deadletter", username="looker")
    assert "all 1 matching" not in client.get(URL).content.decode()
    for action in ("replay", "resolve", "delete"):
        assert client.get(f"{URL}bulk/{action}/").status_code == 403
        assert client.post(f"{URL}bulk/{action}/", {"query": "", "token": f"t-{action}"}).status_code == 403
    assert DeadLetter.objects.get().replayed_at is None
    assert not OperatorAction.objects.exists()


def test_a_filter_the_bulk_actions_do_not_know_is_refused(client):
    dead([tasks.noop.message("a")])
    login_staff(client, "view_deadletter", "replay_deadletter")

    response = client.get(f"{URL}bulk/replay/?id__gt=0", follow=True)

    assert "This list's filter (id__gt) cannot be used to act on every match." in texts(response)
    assert not Batch.objects.exists()


def test_the_audit_trail_is_listed_and_read_only_for_everybody(admin_client, admin_user):
    OperatorAction.objects.create(user=admin_user, username="admin", action="replay_dead_letters", count=7, target="x")

    listing = admin_client.get("/admin/workers/operatoraction/").content.decode()

    assert "replay_dead_letters" in listing and '<td class="field-count">7</td>' in listing
    action = OperatorAction.objects.get()
    assert admin_client.get("/admin/workers/operatoraction/add/").status_code == 403
    assert admin_client.post(f"/admin/workers/operatoraction/{action.pk}/delete/", {"post": "yes"}).status_code == 403
    admin_client.post(f"/admin/workers/operatoraction/{action.pk}/change/", {"count": 1})
    assert OperatorAction.objects.get().count == 7
