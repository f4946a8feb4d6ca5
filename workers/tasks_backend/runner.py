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
from django.dispatch import Signal
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
from workers.tasks_backend.records import from_millis, result_from_record, timestamp
from workers.tasks_backend.results import result_store

logger = logging.getLogger(__name__)

#: Message options that carry what the record needs besides the message itself.
PRIORITY_OPTION = "task_priority"
BACKEND_OPTION = "task_backend"
RUN_AFTER_OPTION = "task_run_after"
STARTED_OPTION = "task_started_at"
WORKERS_OPTION = "task_workers"

HOST = socket.gethostname()
#: django-tasks' own logger, whose receivers log each task's start and end.
TASKS_LOGGER = logging.getLogger("django_tasks")


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
    """Run the task's function for the current message, recording its result at the start and at the end.

    A failure is recorded at once, as an error of this attempt, and raised again for the
    platform's retries: the result says READY again if the job will be retried, FAILED if not.
    The start and a success are recorded in the background (``writer.py``).
    """
    message = CurrentMessage.get_current_message()
    broker = dramatiq.get_broker()
    store = result_store(broker)
    attempt = message.options.get("retries", 0) + 1
    worker_id = f"{HOST}:{os.getpid()}"  # this worker process (read here: it may have been forked)
    now = timestamp(timezone.now())
    # Kept in the message, so that its retries know them without reading the result back.
    message.options.setdefault(STARTED_OPTION, now)
    workers = message.options[WORKERS_OPTION] = [*message.options.get(WORKERS_OPTION, ()), worker_id]
    running = {"last_attempted_at": now, f"worker:{attempt}": worker_id}
    kept = _record_of_message(message, args, kwargs)
    status = {"status": TaskResultStatus.RUNNING, "phase": 2 * attempt}
    if task.takes_context:  # the context holds the whole result, earlier attempts' errors included
        record = store.write(message.message_id, running, keep=kept, read=True, **status)
    else:
        store.write_soon(message.message_id, running, keep=kept, **status)
        workers_by_attempt = {f"worker:{number}": id_ for number, id_ in enumerate(workers, 1)}
        record = {**kept, **running, **workers_by_attempt, "status": TaskResultStatus.RUNNING}
    result = None
    if task.takes_context or _heard(task_started, logging.INFO):
        result = result_from_record(message.message_id, record, task=task)
        task_started.send(_sender(), task_result=result)
    try:
        value = _call(task, result, args, kwargs)
    except KeyboardInterrupt:
        raise
    except BaseException as error:
        # sys.exit() in a task is a failure of the task, not an order to the worker.
        raised = TaskExited(f"{task.module_path} raised {error!r}") if isinstance(error, SystemExit) else error
        verdict = _verdict(broker, message, raised)
        status = TaskResultStatus.READY if verdict == "retry" else TaskResultStatus.FAILED
        _finish(store, message, task, record, status, {f"error:{attempt}": _error_json(error)}, attempt)
        if raised is error:
            raise
        raise raised from error
    try:
        encoded = _json_value(value)
    except (TypeError, ValueError) as error:
        fields = {f"error:{attempt}": _error_json(error)}
        _finish(store, message, task, record, TaskResultStatus.FAILED, fields, attempt)
        raise TaskReturnValueError(f"{task.module_path} returned a value JSON cannot hold: {error}") from error
    _finish(store, message, task, record, TaskResultStatus.SUCCESSFUL, {"return_value": encoded}, attempt)


def _call(task: Task, result, args: list, kwargs: dict):
    if task.takes_context:
        args = [TaskContext(task_result=result), *args]
    if iscoroutinefunction(task.func):
        return asyncio.run(task.func(*args, **kwargs))
    return task.func(*args, **kwargs)


def _finish(store, message, task: Task, record: dict, status: str, fields: dict[str, str], attempt: int) -> None:
    """Record the attempt's end (a success in the background); at the task's end, tell ``task_finished``."""
    if status != TaskResultStatus.READY:
        fields["finished_at"] = timestamp(timezone.now())
    phase = 2 * attempt + 1
    if status == TaskResultStatus.SUCCESSFUL:  # sent after the start, in the same background queue
        store.write_soon(message.message_id, fields, status=status, phase=phase)
    else:  # sent now, perhaps before the start: with what the start would have written
        keep = _record_of_message(message, None, None)
        try:
            store.write(message.message_id, fields, keep=keep, status=status, phase=phase)
        except Exception as error:  # the job's own failure decides what follows, not the result's
            logger.warning("Could not record the failure of task result %s (%r).", message.message_id, error)
    level = logging.INFO if status == TaskResultStatus.SUCCESSFUL else logging.ERROR
    if status != TaskResultStatus.READY and _heard(task_finished, level):
        result = result_from_record(message.message_id, {**record, **fields, "status": status}, task=task)
        task_finished.send(_sender(), task_result=result)


def _heard(signal: Signal, level: int) -> bool:
    """Whether a result is worth building for ``signal``: someone besides django-tasks' own line listens,
    or that line (logged at ``level`` on the "django_tasks" logger, WARNING in the settings) is written."""
    return len(signal.receivers) > 1 or TASKS_LOGGER.isEnabledFor(level)


def _sender() -> type:
    from workers.tasks_backend.backend import DramatiqBackend  # it imports this module

    return DramatiqBackend


def _record_of_message(message, args: list, kwargs: dict) -> dict[str, str]:
    """What the record at commit holds, rebuilt from the message in case that write was lost or is late."""
    record = {
        "task": message.actor_name,
        "queue_name": q_name(message.queue_name),
        "priority": str(message.options.get(PRIORITY_OPTION, 0)),
        "backend": message.options.get(BACKEND_OPTION, "default"),
        "args": _json_text(list(message.args) if args is None else args),
        "kwargs": _json_text(dict(message.kwargs) if kwargs is None else kwargs),
        "enqueued_at": timestamp(from_millis(message.message_timestamp)),
        "started_at": message.options[STARTED_OPTION],
    }
    if message.options.get(RUN_AFTER_OPTION):
        record["run_after"] = message.options[RUN_AFTER_OPTION]
    return record


def _json_text(value: list | dict) -> str:
    return json.dumps(value) if value else ("[]" if isinstance(value, list) else "{}")


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
