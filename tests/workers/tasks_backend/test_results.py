"""Tasks run by the StubBroker's worker, against django-tasks' own backend tests: results, errors, context, logs."""

from __future__ import annotations

import logging

import pytest
from asgiref.sync import async_to_sync
from django_tasks import TaskResultStatus
from django_tasks.base import Task

from tests.task_functions import tasks as test_tasks

pytestmark = pytest.mark.django_db


@pytest.fixture
def committed(jobs, django_capture_on_commit_callbacks):
    """A block whose transaction commits: the outbox sends its jobs and their results are recorded."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def enqueue(committed, task: Task, *args, **kwargs):
    with committed():
        return task.enqueue(*args, **kwargs)


@pytest.mark.parametrize(
    ("task", "exception", "message"),
    [
        (test_tasks.failing_task_value_error, ValueError, "This task failed due to ValueError"),
        (test_tasks.failing_task_system_exit, SystemExit, "This task failed due to SystemExit"),
    ],
)
def test_catches_exception(committed, perform_jobs, task, exception, message):
    result = enqueue(committed, task)

    perform_jobs()
    result.refresh()

    assert result.status == TaskResultStatus.FAILED
    with pytest.raises(ValueError, match="Task failed"):
        result.return_value  # noqa: B018
    assert result.is_finished
    assert result.enqueued_at <= result.started_at <= result.last_attempted_at <= result.finished_at
    assert result.errors[0].exception_class is exception
    assert result.errors[0].traceback.endswith(f"{exception.__name__}: {message}\n")
    assert (result.task, result.args, result.kwargs, result.attempts) == (task, [], {}, 1)


def test_complex_exception(committed, perform_jobs):
    result = enqueue(committed, test_tasks.complex_exception)

    perform_jobs()
    result.refresh()

    assert result.status == TaskResultStatus.FAILED
    assert result._return_value is None
    assert result.errors[0].exception_class is ValueError
    assert 'ValueError(ValueError("This task failed"))' in result.errors[0].traceback
    assert result.attempts == 1


def test_complex_return_value_fails_the_task_once(committed, perform_jobs):
    result = enqueue(committed, test_tasks.complex_return_value)

    assert perform_jobs() == 1
    result.refresh()

    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class is TypeError
    assert "Unsupported type" in result.errors[0].traceback
    assert result.attempts == 1


@pytest.mark.parametrize("task", [test_tasks.calculate_meaning_of_life, test_tasks.calculate_meaning_of_life_async])
def test_refresh_result(committed, perform_jobs, task):
    result = enqueue(committed, task)

    perform_jobs()

    assert (result.status, result.started_at, result.attempts) == (TaskResultStatus.READY, None, 0)
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.is_finished
    assert None not in (result.started_at, result.last_attempted_at, result.finished_at)
    assert (result.return_value, result.attempts, result.errors) == (42, 1, [])


def test_refresh_result_async(committed, perform_jobs):
    result = enqueue(committed, test_tasks.calculate_meaning_of_life)
    perform_jobs()

    async_to_sync(result.arefresh)()

    assert (result.status, result.return_value) == (TaskResultStatus.SUCCESSFUL, 42)


@pytest.mark.parametrize(
    ("task", "state"), [(test_tasks.noop_task, "SUCCESSFUL"), (test_tasks.failing_task_value_error, "FAILED")]
)
def test_started_finished_logs(committed, perform_jobs, caplog, task, state):
    result = enqueue(committed, task)

    with caplog.at_level(logging.DEBUG, logger="django_tasks"):
        perform_jobs()

    lines = [record.getMessage() for record in caplog.records if record.name == "django_tasks"]
    assert len(lines) == 2
    assert "state=RUNNING" in lines[0] and result.id in lines[0]
    assert f"state={state}" in lines[1] and result.id in lines[1]


def test_takes_context(committed, perform_jobs):
    result = enqueue(committed, test_tasks.get_task_id)

    perform_jobs()
    result.refresh()

    assert result.return_value == result.id


def test_context(committed, perform_jobs):
    result = enqueue(committed, test_tasks.attempt_is, 1)

    perform_jobs()
    result.refresh()

    assert (result.status, result.return_value) == (TaskResultStatus.SUCCESSFUL, 1)
