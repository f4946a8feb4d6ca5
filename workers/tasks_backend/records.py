"""A task result's stored record (a hash of strings) and the ``TaskResult`` it describes.

Fields: ``task`` (dotted path), ``backend``, ``queue_name``, ``priority``, ``run_after``,
``args`` and ``kwargs`` (JSON), ``status``, ``enqueued_at``, ``started_at``,
``last_attempted_at``, ``finished_at`` (ISO 8601), ``return_value`` (JSON), one
``worker:<attempt>`` and ``error:<attempt>`` (JSON) per attempt, and ``phase``, which orders the
writes of status (see ``results.py``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from django.core.exceptions import SuspiciousOperation
from django.utils.module_loading import import_string
from django_tasks.base import Task, TaskError, TaskResult, TaskResultStatus


def timestamp(moment: datetime) -> str:
    return moment.isoformat()


def from_millis(millis: int) -> datetime:
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def task_at(path: str, result_id: str) -> Task:
    """The task a result's record names; refuse a path that is not a task."""
    try:
        task = import_string(path)
    except ImportError:
        task = None
    if not isinstance(task, Task):
        raise SuspiciousOperation(f"Task {result_id} does not point to a Task ({path})")
    return task


def result_from_record(result_id: str, record: dict[str, str], *, task: Task | None = None) -> TaskResult:
    """The ``TaskResult`` a stored record describes; ``task``, when given, is the one it names."""
    task = task if task is not None and task.module_path == record["task"] else task_at(record["task"], result_id)
    queue_name, priority = record.get("queue_name", task.queue_name), int(record.get("priority", task.priority))
    backend, run_after = record.get("backend", task.backend), _moment(record.get("run_after"))
    if (queue_name, priority, backend, run_after) != (task.queue_name, task.priority, task.backend, task.run_after):
        task = task.using(queue_name=queue_name, priority=priority, backend=backend, run_after=run_after)
    result = TaskResult(
        task=task,
        id=result_id,
        status=TaskResultStatus(record.get("status", TaskResultStatus.READY)),
        enqueued_at=_moment(record.get("enqueued_at")),
        started_at=_moment(record.get("started_at")),
        last_attempted_at=_moment(record.get("last_attempted_at")),
        finished_at=_moment(record.get("finished_at")),
        args=json.loads(record.get("args", "[]")),
        kwargs=json.loads(record.get("kwargs", "{}")),
        backend=record.get("backend", task.backend),
        errors=[TaskError(**json.loads(value)) for _, value in _per_attempt(record, "error:")],
        worker_ids=[value for _, value in _per_attempt(record, "worker:")],
    )
    if "return_value" in record:
        object.__setattr__(result, "_return_value", json.loads(record["return_value"]))
    return result


def _per_attempt(record: dict[str, str], prefix: str) -> list[tuple[int, str]]:
    return sorted((int(name[len(prefix) :]), value) for name, value in record.items() if name.startswith(prefix))


def _moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
