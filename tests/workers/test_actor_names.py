"""Services queue actors by name; a name no tasks module declares stops Django at start-up."""

from __future__ import annotations

import pytest
from django.core import checks

from workers import enqueue
from workers.apps import actor_names_check


@pytest.fixture
def named():
    before = set(enqueue.NAMED)
    yield enqueue.NAMED
    enqueue.NAMED.clear()
    enqueue.NAMED.update(before)


def test_every_actor_the_services_name_is_declared():
    assert actor_names_check(None) == []
    assert {"send_email", "process_order", "process_payment", "reverse_payment", "adjust_stock"} <= enqueue.NAMED


def test_a_misspelt_actor_name_is_an_error_at_start_up(named):
    enqueue.actor_named("proces_order")

    errors = actor_names_check(None)

    assert [(error.id, error.level) for error in errors] == [("workers.E002", checks.ERROR)]
    assert "'proces_order'" in errors[0].msg


def test_a_job_queued_by_name_goes_to_the_named_actor_and_its_queue(jobs, db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        enqueue.enqueue_on_commit(enqueue.actor_named("send_email"), 12345)

    [job] = jobs.enqueued("send_email")
    assert (job.actor_name, job.queue_name, job.args) == ("send_email", "mailers", (12345,))
