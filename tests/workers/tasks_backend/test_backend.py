"""The Dramatiq task backend against django-tasks' own backend tests (RQ, database): enqueue, validation, results.

Where this backend differs on purpose, the test says so: the job waits for the commit (theirs
send at once), and the result of a task enqueued in a transaction exists from the commit on.
"""

from __future__ import annotations

import logging
from datetime import datetime

import dramatiq
import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import SuspiciousOperation
from django.db import transaction
from django.test import override_settings
from django_tasks import TaskResultStatus, default_task_backend, task_backends
from django_tasks.base import TASK_MAX_PRIORITY, TASK_MIN_PRIORITY, Task
from django_tasks.exceptions import InvalidTaskError, TaskResultDoesNotExist, TaskResultMismatch

from tests.task_functions import tasks as test_tasks
from workers.tasks_backend import DramatiqBackend
from workers.tasks_backend.results import result_store

pytestmark = pytest.mark.django_db


@pytest.fixture
def committed(jobs, django_capture_on_commit_callbacks):
    """A block whose transaction commits: the outbox sends its jobs and their results are recorded."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def enqueue(committed, task: Task, *args, **kwargs):
    with committed():
        return task.enqueue(*args, **kwargs)


def test_using_correct_backend():
    assert default_task_backend == task_backends["default"]
    assert isinstance(task_backends["default"], DramatiqBackend)
    assert default_task_backend.alias == "default"
    assert default_task_backend.queues == {"urgent", "default", "mailers", "low"}


@pytest.mark.parametrize("task", [test_tasks.noop_task, test_tasks.noop_task_async])
def test_enqueue_task(committed, task):
    result = enqueue(committed, task, 1, two=3)

    assert result.status == TaskResultStatus.READY
    assert not result.is_finished
    assert (result.started_at, result.last_attempted_at, result.finished_at) == (None, None, None)
    with pytest.raises(ValueError, match="Task has not finished yet"):
        result.return_value  # noqa: B018
    assert (result.task, result.args, result.kwargs, result.attempts) == (task, [1], {"two": 3}, 0)


def test_enqueue_task_async(committed):
    with committed():
        result = async_to_sync(test_tasks.noop_task_async.aenqueue)()

    assert (result.status, result.args, result.kwargs, result.attempts) == (TaskResultStatus.READY, [], {}, 0)


def test_get_result(committed):
    result = enqueue(committed, test_tasks.noop_task)

    assert default_task_backend.get_result(result.id) == result
    assert test_tasks.noop_task.get_result(result.id) == result
    assert async_to_sync(default_task_backend.aget_result)(result.id) == result


def test_get_incorrect_result(committed):
    result = enqueue(committed, test_tasks.noop_task_async)

    with pytest.raises(TaskResultMismatch, match="Task does not match"):
        test_tasks.noop_task.get_result(result.id)


@pytest.mark.parametrize("result_id", ["123", "6c0ea5a5-04d6-4a16-8e5c-6a1e6e5ef7b8"])
def test_get_missing_result(result_id):
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result(result_id)
    with pytest.raises(TaskResultDoesNotExist):
        async_to_sync(default_task_backend.aget_result)(result_id)


def test_invalid_task_path():
    forged = {"task": "subprocess.check_output", "args": "[]", "kwargs": "{}"}
    result_store(dramatiq.get_broker()).write("forged", forged)

    with pytest.raises(SuspiciousOperation, match=r"Task forged does not point to a Task \(subprocess.check_output\)"):
        default_task_backend.get_result("forged")


def test_check():
    assert list(default_task_backend.check()) == []


@override_settings(TASKS={"default": {"BACKEND": "workers.tasks_backend.DramatiqBackend", "QUEUES": ["queue-2"]}})
def test_check_names_a_queue_that_is_not_a_job_queue():
    [error] = default_task_backend.check()

    assert error.id == "workers.E010"
    assert "Add 'queue-2' to settings.JOB_QUEUES" in error.hint


def test_waits_until_transaction_commit(jobs, django_capture_on_commit_callbacks):
    # Theirs send at once; here a worker must never see a task before the data it is about.
    with django_capture_on_commit_callbacks(execute=True):
        result = test_tasks.noop_task.enqueue()
        assert result.enqueued_at is not None
        assert jobs.enqueued() == []
        with pytest.raises(TaskResultDoesNotExist):
            default_task_backend.get_result(result.id)

    assert len(jobs.enqueued(test_tasks.noop_task.module_path)) == 1
    assert default_task_backend.get_result(result.id).status == TaskResultStatus.READY


def test_rollback_sends_nothing(jobs, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        try:
            with transaction.atomic():
                result = test_tasks.noop_task.enqueue()
                raise RuntimeError("the request failed")
        except RuntimeError:
            pass

    jobs.assert_nothing_enqueued()
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result(result.id)


def test_enqueue_logs(committed, caplog):
    with caplog.at_level(logging.DEBUG, logger="django_tasks"):
        result = enqueue(committed, test_tasks.noop_task)

    [line] = [record.getMessage() for record in caplog.records if record.name == "django_tasks"]
    assert "enqueued" in line and result.id in line


def test_queue_isolation(committed, jobs):
    default_task = enqueue(committed, test_tasks.noop_task)
    other_task = enqueue(committed, test_tasks.noop_task.using(queue_name="mailers"))

    assert [job.message_id for job in jobs.enqueued(queue="default")] == [default_task.id]
    assert [job.message_id for job in jobs.enqueued(queue="mailers")] == [other_task.id]


def test_unknown_queue_name_names_the_job_queues():
    expected = r"Queue 'queue-2' is not valid for backend\. The job queues are: urgent"
    with pytest.raises(InvalidTaskError, match=expected):
        test_tasks.noop_task.using(queue_name="queue-2")


@override_settings(TASKS={"default": {"BACKEND": "workers.tasks_backend.DramatiqBackend", "QUEUES": []}})
def test_unknown_queue_name_is_refused_without_a_queue_list():
    with pytest.raises(InvalidTaskError, match=r"The job queues are: urgent, default, mailers, low"):
        test_tasks.noop_task.using(queue_name="unknown_queue")


def test_enqueue_with_invalid_argument():
    with pytest.raises(TypeError, match="Unsupported type: <class 'datetime.datetime'> in args\\[0\\] of task"):
        test_tasks.noop_task.enqueue(datetime.now())
    with pytest.raises(TypeError, match=r"Unsupported key: 1 in options of task tests.task_functions.tasks.noop_task"):
        test_tasks.noop_task.enqueue(options={1: "one"})


def test_naive_run_after_and_invalid_priority():
    with pytest.raises(InvalidTaskError, match="run_after must be an aware datetime"):
        test_tasks.noop_task.using(run_after=datetime.now())
    for priority in (TASK_MIN_PRIORITY - 1, TASK_MAX_PRIORITY + 1):
        with pytest.raises(InvalidTaskError, match="priority must be a whole number"):
            test_tasks.noop_task.using(priority=priority)
