"""The task backend: ``task.enqueue()`` goes through the outbox to the task's own actor; results from Redis."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.db import transaction
from django.utils import timezone
from django_tasks.backends.base import BaseTaskBackend
from django_tasks.base import Task, TaskResult, TaskResultStatus
from django_tasks.exceptions import InvalidTaskError, TaskResultDoesNotExist
from django_tasks.signals import task_enqueued

from workers import queues
from workers.outbox import outbox_add
from workers.tasks_backend.records import from_millis, result_from_record, timestamp
from workers.tasks_backend.results import result_store, result_ttl_ms
from workers.tasks_backend.runner import BACKEND_OPTION, PRIORITY_OPTION, RUN_AFTER_OPTION, task_actor

logger = logging.getLogger(__name__)

#: A task of this priority or more runs on the heaviest queue, of this or less on the lightest.
URGENT_PRIORITY = 50
LOW_PRIORITY = -50


class DramatiqBackend(BaseTaskBackend):
    """Tasks as jobs of the platform: enqueued after commit through the outbox, run by the workers.

    ``queue_name`` is one of ``settings.JOB_QUEUES`` (the backend's ``QUEUES`` default to
    them; another name is refused when the task is declared). ``priority`` chooses among them:
    ``URGENT_PRIORITY`` (50) or more runs on the heaviest queue, ``LOW_PRIORITY`` (-50) or less
    on the lightest, anything between on the task's own queue (Dramatiq has no order within a
    queue). ``run_after`` delays the job. Arguments must be JSON values, checked at enqueue.

    Enqueued inside a transaction, the job is written to the outbox with it: a rollback sends
    nothing and a broker that is down at commit delays the task, never loses it. Each attempt
    writes the result (``results.py``); the result is also written at commit, so ``get_result``
    finds a task that has not started yet, but not before the commit.
    """

    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict) -> None:
        super().__init__(alias, params)
        if "QUEUES" not in params:
            self.queues = set(settings.JOB_QUEUES)

    def validate_task(self, task: Task) -> None:
        try:
            super().validate_task(task)
        except InvalidTaskError as error:
            if task.queue_name not in self.queues:
                raise InvalidTaskError(f"{error} The job queues are: {', '.join(queues.names())}.") from None
            raise
        if task.queue_name not in settings.JOB_QUEUES:
            raise InvalidTaskError(
                f"Queue '{task.queue_name}' is not valid for backend. "
                f"The job queues are: {', '.join(queues.names())} (settings.JOB_QUEUES)."
            )
        # django_dramatiq sets the broker as its app config is made: from then on the actor can be declared.
        if apps.apps_ready:
            task_actor(task)

    def enqueue(self, task: Task, args: Any, kwargs: Any) -> TaskResult:
        self.validate_task(task)
        args, kwargs = json_arguments(task, args, kwargs)
        actor = task_actor(task)
        options: dict[str, Any] = {}
        if task.priority:
            options[PRIORITY_OPTION] = task.priority
        if self.alias != "default":
            options[BACKEND_OPTION] = self.alias
        delay = None
        if task.run_after is not None:
            options[RUN_AFTER_OPTION] = timestamp(task.run_after)
            delay = max(0, int((task.run_after - timezone.now()).total_seconds() * 1000))
        message = actor.message_with_options(args=tuple(args), kwargs=kwargs, **options)
        queue = self.queue_of(task)
        if queue != message.queue_name:
            message = message.copy(queue_name=queue)
        result = TaskResult(
            task=task,
            id=message.message_id,
            status=TaskResultStatus.READY,
            enqueued_at=from_millis(message.message_timestamp),
            started_at=None,
            last_attempted_at=None,
            finished_at=None,
            args=args,
            kwargs=kwargs,
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        connection = transaction.get_connection()
        if connection.in_atomic_block:
            transaction.on_commit(lambda: _record(actor.broker, result, delay))
        else:
            _record(actor.broker, result, delay)
        outbox_add([message], delay=delay, broker=actor.broker)
        task_enqueued.send(type(self), task_result=result)
        return result

    def queue_of(self, task: Task) -> str:
        """The job queue the task's message goes to, from its queue and priority."""
        if task.priority >= URGENT_PRIORITY:
            return queues.names()[0]
        if task.priority <= LOW_PRIORITY:
            return queues.names()[-1]
        return task.queue_name

    def get_result(self, result_id: str) -> TaskResult:
        record = result_store(task_broker()).read(result_id)
        if not record:
            raise TaskResultDoesNotExist(result_id)
        return result_from_record(result_id, record)

    def check(self, **kwargs: Any) -> Iterable[checks.CheckMessage]:
        for name in sorted(self.queues - set(settings.JOB_QUEUES)):
            yield checks.Error(
                f"TASKS[{self.alias!r}] names the queue {name!r}, which is not a job queue",
                hint=f"Add {name!r} to settings.JOB_QUEUES, or use one of: {', '.join(queues.names())}.",
                id="workers.E010",
            )
        if not isinstance(getattr(settings, "TASK_RESULT_TTL", None), int | float):
            yield checks.Error("settings.TASK_RESULT_TTL must be a number of seconds", id="workers.E011")


def task_broker():
    import dramatiq

    return dramatiq.get_broker()


def json_arguments(task: Task, args: Any, kwargs: Any) -> tuple[list, dict]:
    """The arguments as JSON values; a TypeError naming the task and the argument if one is not."""
    args, kwargs = list(args), dict(kwargs)
    for index, value in enumerate(args):
        _check_json(value, task, f"args[{index}]")
    for name, value in kwargs.items():
        _check_json(value, task, name)
    return args, kwargs


def _check_json(value: Any, task: Task, where: str) -> None:
    if value is None or isinstance(value, str | bool | int):
        return
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise TypeError(f"Unsupported value: {value} in {where} of task {task.module_path}: not JSON")
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_json(item, task, f"{where}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"Unsupported key: {key!r} in {where} of task {task.module_path}: JSON keys are text")
            _check_json(item, task, f"{where}[{key!r}]")
        return
    raise TypeError(
        f"Unsupported type: {type(value)} in {where} of task {task.module_path}: task arguments must be "
        "JSON values (text, numbers, booleans, None, lists and dicts of them); pass ids, not objects"
    )


def _record(broker, result: TaskResult, delay: int | None) -> None:
    """Write the READY record; a lost write only means none until the worker writes its own."""
    fields = {
        "task": result.task.module_path,
        "backend": result.backend,
        "queue_name": result.task.queue_name,
        "priority": str(result.task.priority),
        "args": json.dumps(result.args),
        "kwargs": json.dumps(result.kwargs),
        "enqueued_at": timestamp(result.enqueued_at),
    }
    if result.task.run_after is not None:
        fields["run_after"] = timestamp(result.task.run_after)
    try:
        store = result_store(broker)
        store.write(result.id, fields, keep={"status": TaskResultStatus.READY})
        if delay:
            store.expire(result.id, result_ttl_ms(delay))
    except Exception as error:
        logger.warning("Could not record task result %s (%s); its worker will.", result.id, type(error).__name__)
