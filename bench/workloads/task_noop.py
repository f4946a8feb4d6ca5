"""Enqueue the no-op ``@task`` the way Django code would, ``noop_task.enqueue()``, for the tasks_backend scenario."""

from __future__ import annotations


def enqueue(jobs: int) -> None:
    """Send ``jobs`` tasks (outside a transaction: at once, each with its result recorded first)."""
    from bench.app.tasks import noop_task

    for _ in range(jobs):
        noop_task.enqueue()
