"""Each task's Dramatiq actor, and what it does around the task's function: record the run's result."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import socket
from collections.abc import Callable
from inspect import iscoroutinefunction

import dramatiq
from django.utils import timezone
from django_tasks.base import Task, TaskContext, TaskResultStatus
from django_tasks.signals import task_finished, task_started
from django_tasks.utils import get_exception_traceback, get_module_path, normalize_json
from dramatiq.common import q_name
from dramatiq.middleware import CurrentMessage

from workers import queues
from workers.errors import PermanentError
from workers.middleware.retries import Retries
from workers.redaction import redact
from workers.tasks_backend.options import options_of
from workers.tasks_backend.results import from_millis, result_from_record, result_store, timestamp

logger = logging.getLogger(__name__)

#: Message options that carry what the record needs besides the message itself.
PRIORITY_OPTION = "task_priority"
BACKEND_OPTION = "task_backend"
RUN_AFTER_OPTION = "task_run_after"

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


class TaskExited(RuntimeError):
    """The task called ``sys.exit()``: a failure like any other, retried on the task's schedule."""


class TaskReturnValueError(PermanentError):
    """The task returned what JSON cannot hold: it ran, so running it again would not help."""


def task_actor(task: Task) -> dramatiq.Actor:
    """The task's actor, declared on the current broker the first time it is asked for.

    Named after the task's dotted path; its queue is ``default`` (each message is routed to the
    task's own queue); its options are the function's ``job_options``. It takes the task's
    arguments (without ``context``), so the argument check and retries callbacks see them.
    """
    broker = dramatiq.get_broker()
    name = task.module_path
    if name in broker.actors:
        return broker.get_actor(name)
    options = options_of(task.func)
    callback = options.get("on_retries_exhausted")
    if isinstance(callback, Task):
        options["on_retries_exhausted"] = task_actor(callback)
    return dramatiq.actor(_runner(task), actor_name=name, queue_name=queues.DEFAULT, broker=broker, **options)


def _runner(task: Task) -> Callable[..., None]:
    parameters = list(inspect.signature(task.func).parameters.values())
    if task.takes_context:
        parameters = parameters[1:]

    def run(*args, **kwargs) -> None:
        task_run(task, list(args), kwargs)

    run.__signature__ = inspect.Signature(parameters)
    # The argument check reads the annotations, resolved in the task's module (found through __wrapped__).
    run.__annotations__ = {name: hint for name, hint in task.func.__annotations__.items() if name != "context"}
    run.__wrapped__ = task.func
    run.__name__ = run.__qualname__ = task.func.__name__
    run.__module__ = task.func.__module__
    run.__doc__ = task.func.__doc__
    return run


def task_run(task: Task, args: list, kwargs: dict) -> None:
    """Run the task's function for the current message, writing its result at the start and at the end.

    A failure is recorded as an error of this attempt and raised again for the platform's
    retries; the result says READY again if the job will be retried, FAILED if not.
    """
    message = CurrentMessage.get_current_message()
    broker = dramatiq.get_broker()
    store = result_store(broker)
    attempt = message.options.get("retries", 0) + 1
    now = timestamp(timezone.now())
    record = store.write(
        message.message_id,
        {"status": TaskResultStatus.RUNNING, "last_attempted_at": now, f"worker:{attempt}": WORKER_ID},
        keep={"started_at": now, **_record_of_message(message, args, kwargs)},
        read=True,
    )
    result = result_from_record(message.message_id, record)
    task_started.send(type(task.get_backend()), task_result=result)
    try:
        value = _call(task, result, args, kwargs)
    except KeyboardInterrupt:
        raise
    except BaseException as error:
        # sys.exit() in a task is a failure of the task, not an order to the worker.
        raised = TaskExited(f"{task.module_path} raised {error!r}") if isinstance(error, SystemExit) else error
        verdict = _verdict(broker, message, raised)
        status = TaskResultStatus.READY if verdict == "retry" else TaskResultStatus.FAILED
        _finish(store, message, task, status, {f"error:{attempt}": _error_json(error)})
        if raised is error:
            raise
        raise raised from error
    try:
        encoded = _json_value(value)
    except (TypeError, ValueError) as error:
        _finish(store, message, task, TaskResultStatus.FAILED, {f"error:{attempt}": _error_json(error)})
        raise TaskReturnValueError(f"{task.module_path} returned a value JSON cannot hold: {error}") from error
    _finish(store, message, task, TaskResultStatus.SUCCESSFUL, {"return_value": encoded})


def _call(task: Task, result, args: list, kwargs: dict):
    if task.takes_context:
        args = [TaskContext(task_result=result), *args]
    if iscoroutinefunction(task.func):
        return asyncio.run(task.func(*args, **kwargs))
    return task.func(*args, **kwargs)


def _finish(store, message, task: Task, status: str, fields: dict[str, str]) -> None:
    finished = {"finished_at": timestamp(timezone.now())} if status != TaskResultStatus.READY else {}
    record = store.write(message.message_id, {"status": status, **finished, **fields}, read=True)
    if status != TaskResultStatus.READY:
        task_finished.send(type(task.get_backend()), task_result=result_from_record(message.message_id, record))


def _record_of_message(message, args: list, kwargs: dict) -> dict[str, str]:
    """What the record at commit holds, rebuilt from the message in case that write was lost."""
    record = {
        "task": message.actor_name,
        "queue_name": q_name(message.queue_name),
        "priority": str(message.options.get(PRIORITY_OPTION, 0)),
        "backend": message.options.get(BACKEND_OPTION, "default"),
        "args": json.dumps(args),
        "kwargs": json.dumps(kwargs),
        "enqueued_at": timestamp(from_millis(message.message_timestamp)),
    }
    if message.options.get(RUN_AFTER_OPTION):
        record["run_after"] = message.options[RUN_AFTER_OPTION]
    return record


def _verdict(broker: dramatiq.Broker, message, error: BaseException) -> str:
    """What the platform's retries will do with this failure; "exhaust" without them."""
    for middleware in broker.middleware:
        if isinstance(middleware, Retries):
            return middleware.verdict(broker, message, error)
    return "exhaust"


def _json_value(value) -> str:
    return json.dumps(normalize_json(value), allow_nan=False)


def _error_json(error: BaseException) -> str:
    return json.dumps(
        {"exception_class_path": get_module_path(type(error)), "traceback": redact(get_exception_traceback(error))}
    )
