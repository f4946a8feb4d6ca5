"""Test tasks on the Dramatiq task backend, after django-tasks' own test tasks, plus ones that record their runs."""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django_tasks import TaskContext, task

from tests.support.tasks import record, recorded
from workers.tasks_backend import job_options


@task()
def noop_task(*args: Any, **kwargs: Any) -> None:
    return None


@task
def noop_task_from_bare_decorator(*args: Any, **kwargs: Any) -> None:
    return None


@task()
async def noop_task_async(*args: Any, **kwargs: Any) -> None:
    return None


@task()
def calculate_meaning_of_life() -> int:
    return 42


@task()
async def calculate_meaning_of_life_async() -> int:
    return 42


@task()
@job_options(max_retries=0)
def failing_task_value_error() -> None:
    raise ValueError("This task failed due to ValueError")


@task()
@job_options(max_retries=0)
def failing_task_system_exit() -> None:
    raise SystemExit("This task failed due to SystemExit")


@task()
@job_options(max_retries=0)
def complex_exception() -> None:
    raise ValueError(ValueError("This task failed"))


@task()
def complex_return_value() -> Any:
    # Something JSON cannot hold
    return lambda: True


@task(takes_context=True)
def get_task_id(context: TaskContext) -> str:
    return context.task_result.id


@task(takes_context=True)
def attempt_is(context: TaskContext, attempt: int) -> int:
    assert isinstance(context, TaskContext)
    assert context.attempt == attempt
    return context.attempt


@task(queue_name="mailers")
def add(a: int, b: int) -> int:
    return a + b


@task()
def record_run(key: str, note: str = "") -> str:
    record(key, note=note)
    return f"ran {len(recorded(key))}"


@task()
def record_exhausted(key: str, error: str) -> None:
    record(f"{key}:exhausted", error=error)


@task(takes_context=True)
@job_options(max_retries=2, retry_backoff=lambda retries: 0.2, on_retries_exhausted=record_exhausted)
def fails_every_time(context: TaskContext, key: str) -> None:
    record(key, attempt=context.attempt)
    raise ConnectionError(f"still down on attempt {context.attempt}")


@task(takes_context=True)
@job_options(max_retries=3, retry_backoff=lambda retries: 0.1)
def fails_then_succeeds(context: TaskContext, key: str, failures: int) -> int:
    record(key, attempt=context.attempt)
    if context.attempt <= failures:
        raise ConnectionError("the far side is down")
    return context.attempt


@task()
@job_options(unique="until_executed")
def unique_record(key: str) -> None:
    record(key)


@task(takes_context=True)
@job_options(max_retries=3, retry_backoff=lambda retries: 0.1)
def succeeds_on_attempt(context: TaskContext, attempt: int) -> int:
    if context.attempt < attempt:
        raise ConnectionError(f"down on attempt {context.attempt}")
    return context.attempt


@task()
def note_exhausted(key: str, error: str) -> None:
    cache.set(key, error)


@task()
@job_options(max_retries=1, retry_backoff=lambda retries: 0.1, on_retries_exhausted=note_exhausted)
def always_down(key: str) -> None:
    raise ConnectionError("still down")
