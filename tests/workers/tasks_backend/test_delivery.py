"""``@task`` through a real rundramatiq worker and a real Redis: commit or rollback, results, retries, dead letters."""

from __future__ import annotations

import pytest
from django.db import transaction
from django_tasks import TaskResultStatus, default_task_backend
from django_tasks.exceptions import TaskResultDoesNotExist

from tests.support.tasks import recorded
from tests.task_functions import tasks as test_tasks
from workers.models import DeadLetter, OutboxMessage
from workers.tasks_backend import backend
from workers.tasks_backend.runner import task_actor
from workers.testing import wait_until

pytestmark = pytest.mark.delivery


@pytest.fixture
def tasks_on_redis(redis_broker, monkeypatch):
    """The test process sends its tasks to the workers' Redis, and reads their results there."""
    for task in (test_tasks.record_run, test_tasks.fails_every_time):
        monkeypatch.setattr(task_actor(task), "broker", redis_broker)
    monkeypatch.setattr(backend, "task_broker", lambda: redis_broker)
    return redis_broker


def test_tasks_run_once_after_commit_never_after_rollback_and_fail_into_the_dead_letters(
    start_worker, redis_url, tasks_on_redis
):
    # Given a worker that has the test tasks
    worker = start_worker(redis_url=redis_url, env={"EXTRA_APPS": "tests.support,tests.task_functions"})

    # When one task is enqueued in a transaction that rolls back, one in a transaction that
    # commits, and one that fails on every attempt
    with pytest.raises(RuntimeError), transaction.atomic():
        rolled_back = test_tasks.record_run.enqueue("rolled-back")
        raise RuntimeError("the request failed")
    with transaction.atomic():
        committed = test_tasks.record_run.enqueue("committed", note="once")
    failing = test_tasks.fails_every_time.enqueue(key="failing")

    # Then the committed task runs once and its result says what it returned
    wait_until(lambda: default_task_backend.get_result(committed.id).is_finished, timeout=30, what="the task")
    result = test_tasks.record_run.get_result(committed.id)
    assert (result.status, result.return_value, result.attempts) == (TaskResultStatus.SUCCESSFUL, "ran 1", 1)
    assert result.worker_ids[0].split(":")[-1].isdigit()
    assert [entry["note"] for entry in recorded("committed")] == ["once"]

    # And the rolled-back one was never sent, and has no result
    assert recorded("rolled-back") == []
    assert not OutboxMessage.objects.exists()
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result(rolled_back.id)

    # And the failing one was retried on its schedule, then failed for good with a dead letter
    wait_until(lambda: recorded("failing:exhausted"), timeout=30, what="the exhausted callback")
    failed = default_task_backend.get_result(failing.id)
    assert (failed.status, failed.attempts) == (TaskResultStatus.FAILED, 3)
    assert [error.exception_class for error in failed.errors] == [ConnectionError] * 3
    assert failed.errors[-1].traceback.endswith("ConnectionError: still down on attempt 3\n")
    assert [entry["attempt"] for entry in recorded("failing")] == [1, 2, 3]
    path = test_tasks.fails_every_time.module_path
    assert len(worker.log_lines(rf"Retrying message {failing.id} of {path} in 200 ms")) == 2
    dead = DeadLetter.objects.get()
    assert (dead.actor_name, dead.message_id, dead.reason) == (path, failing.id, "exhausted")
    assert [entry["error"] for entry in recorded("failing:exhausted")] == ["ConnectionError: still down on attempt 3"]
