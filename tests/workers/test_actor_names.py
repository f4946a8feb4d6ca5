"""Services queue actors and tasks by name; a name no tasks module declares stops Django at start-up."""

from __future__ import annotations

import pytest
from django.core import checks

from workers import enqueue
from workers.apps import actor_names_check


@pytest.fixture
def named():
    before, tasks_before = set(enqueue.NAMED), set(enqueue.NAMED_TASKS)
    yield enqueue.NAMED
    enqueue.NAMED.clear()
    enqueue.NAMED.update(before)
    enqueue.NAMED_TASKS.clear()
    enqueue.NAMED_TASKS.update(tasks_before)


def test_every_actor_the_services_name_is_declared():
    assert actor_names_check(None) == []
    assert {"send_mail", "process_order", "process_payment", "reverse_payment"} <= enqueue.NAMED
    assert "orders.tasks.adjust_stock" in enqueue.NAMED_TASKS
    assert {"import_data", "process_price_batch", "process_item", "generate_daily_report"} <= enqueue.NAMED


def test_a_misspelt_actor_name_is_an_error_at_start_up(named):
    enqueue.actor_named("proces_order")

    errors = actor_names_check(None)

    assert [(error.id, error.level) for error in errors] == [("workers.E002", checks.ERROR)]
    assert "'proces_order'" in errors[0].msg


@pytest.mark.parametrize("path", ["reports.tasks.send_report_mial", "reports.taskz.send_report_mail", "reports.tasks"])
def test_a_task_path_that_names_no_task_is_an_error_at_start_up(named, path):
    enqueue.task_named(path)

    errors = actor_names_check(None)

    assert [(error.id, error.level) for error in errors] == [("workers.E002", checks.ERROR)]
    assert repr(path) in errors[0].msg


def test_a_job_queued_by_name_goes_to_the_named_actor_and_its_queue(jobs, db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        enqueue.enqueue_on_commit(enqueue.actor_named("send_mail"), 12345)

    [job] = jobs.enqueued("send_mail")
    assert (job.actor_name, job.queue_name, job.args) == ("send_mail", "mailers", (12345,))


def test_a_task_enqueued_by_name_goes_out_after_commit_with_its_result_ready(
    jobs, db, django_capture_on_commit_callbacks
):
    # Given a task referred to by its dotted path
    send_report_mail = enqueue.task_named("reports.tasks.send_report_mail")

    # When it is enqueued in a transaction
    with django_capture_on_commit_callbacks(execute=True):
        result = send_report_mail.enqueue(12345)
        assert jobs.enqueued("reports.tasks.send_report_mail") == []

    # Then its job goes out at commit, and its result is known by id
    [job] = jobs.enqueued("reports.tasks.send_report_mail")
    assert (job.queue_name, job.args, job.message_id) == ("mailers", (12345,), result.id)
    assert send_report_mail.task.get_result(result.id).status == "READY"
