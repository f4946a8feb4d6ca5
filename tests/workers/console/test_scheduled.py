"""The scheduled page's actions and permissions, and run now, in-process on the StubBroker."""

from __future__ import annotations

import dramatiq
import pytest

from tests.support import tasks
from tests.support.users import login_staff
from workers.cancellation import delayed_jobs, requests, run_now
from workers.models import OperatorAction
from workers.uniqueness import DuplicateJob

pytestmark = pytest.mark.django_db


def test_cancel_from_the_console_needs_its_own_permission_and_is_audited_once(client):
    # Given staff who may view the page but not act
    login_staff(client, "view_console_scheduled")
    assert client.get("/admin/jobs/scheduled/").status_code == 200
    assert client.post("/admin/jobs/scheduled/", {"action": "cancel", "message_id": "m-1"}).status_code == 403
    assert not requests().contains("m-1")


def test_the_page_needs_its_permission(client):
    login_staff(client, "cancel_job")
    assert client.get("/admin/jobs/scheduled/").status_code == 403
    assert client.post("/admin/jobs/scheduled/", {"action": "cancel", "message_id": "m-1"}).status_code == 403


def test_a_cancel_by_message_id_is_recorded_once_however_often_the_form_is_sent(client):
    login_staff(client, "view_console_scheduled", "cancel_job")
    form = {"action": "cancel", "message_id": "m-2", "token": "once"}

    first = client.post("/admin/jobs/scheduled/", form, follow=True).content.decode()
    second = client.post("/admin/jobs/scheduled/", form, follow=True).content.decode()

    assert "Cancelled 1 job(s)" in first and "sent already" in second
    assert requests().contains("m-2")
    action = OperatorAction.objects.get()
    assert (action.action, action.count, action.username, action.detail) == ("cancel_job", 1, "clerk", {"ids": ["m-2"]})


def test_run_now_finds_the_delayed_copy_on_the_stub_broker(jobs):
    broker = dramatiq.get_broker()
    delayed = tasks.noop.send_with_options(args=("k",), delay=600_000)

    copy = run_now(delayed_jobs([delayed.message_id])[delayed.message_id])

    assert (copy.queue_name, copy.args) == ("default", ("k",)) and "eta" not in copy.options
    assert copy.message_id != delayed.message_id and requests(broker).contains(delayed.message_id)


def test_run_now_hands_a_unique_jobs_lock_to_its_copy(jobs):
    # Given a unique job waiting for its eta, holding its lock
    delayed = tasks.unique_flaky.send_with_options(args=("u",), delay=600_000)
    with pytest.raises(DuplicateJob):
        tasks.unique_flaky.send("u")

    # When it is run now
    copy = run_now(delayed_jobs([delayed.message_id])[delayed.message_id])

    # Then the copy was sent (not dropped as its original's twin), and it holds the lock now
    assert [job.message_id for job in jobs.enqueued(tasks.unique_flaky) if not job.delayed] == [copy.message_id]
    with pytest.raises(DuplicateJob):
        tasks.unique_flaky.send("u")


def test_a_message_id_that_is_not_one_is_refused(client):
    login_staff(client, "view_console_scheduled", "cancel_job")

    page = client.post("/admin/jobs/scheduled/", {"action": "cancel", "message_id": "x" * 65}, follow=True)

    assert "nothing was done" in page.content.decode()
    assert not OperatorAction.objects.exists()


def test_staff_who_may_act_get_a_box_per_job_and_the_two_actions(client, jobs):
    login_staff(client, "view_console_scheduled", "cancel_job")
    delayed = tasks.noop.send_with_options(args=("k",), delay=600_000)

    page = client.get("/admin/jobs/scheduled/").content.decode()

    assert f'name="message_id" value="{delayed.message_id}"' in page
    assert "<td>noop</td><td>default</td>" in page and "(in 9\xa0minutes)" in page
    assert "Run selected now" in page and "Cancel selected" in page and "Cancel a job by its message id" in page
