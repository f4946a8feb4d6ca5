"""Enqueueing jobs: after the surrounding transaction commits, or (named as such) right away.

Domain services name the actors they queue (:func:`actor_named`), and the tasks of Django's tasks
API (:func:`task_named`), instead of importing their ``tasks`` modules: a service stays a plain
function, and the names are checked when Django starts (``workers.E002``), so a typo fails
``manage.py check``, not the first job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dramatiq
from django.utils.module_loading import autodiscover_modules, import_string
from dramatiq.errors import ActorNotFound

from workers import queues
from workers.outbox import outbox_add

if TYPE_CHECKING:
    from django_tasks.base import Task, TaskResult


@dataclass(frozen=True)
class ActorName:
    """A reference by name to an actor declared in some app's ``tasks`` module."""

    name: str

    @property
    def actor(self) -> dramatiq.Actor:
        """The actor; the apps' ``tasks`` modules are imported first if no code has imported its own yet."""
        broker = dramatiq.get_broker()
        try:
            return broker.get_actor(self.name)
        except ActorNotFound:
            _import_tasks_modules()
            return broker.get_actor(self.name)


#: Every actor named by :func:`actor_named`, for the start-up check.
NAMED: set[str] = set()


def actor_named(name: str) -> ActorName:
    """Refer to an actor by name, at module level of the code that queues it; checked at start-up."""
    NAMED.add(name)
    return ActorName(name)


@dataclass(frozen=True)
class TaskName:
    """A reference by dotted path to a task (Django's tasks API) declared in some app's ``tasks`` module."""

    path: str

    @property
    def task(self) -> Task:
        return import_string(self.path)

    def enqueue(self, *args: Any, **kwargs: Any) -> TaskResult:
        """Enqueue the task as ``task.enqueue()`` does: after commit, through the outbox."""
        return self.task.enqueue(*args, **kwargs)


#: Every task named by :func:`task_named`, for the start-up check.
NAMED_TASKS: set[str] = set()


def task_named(path: str) -> TaskName:
    """Refer to a task by its dotted path, at module level of the code that enqueues it; checked at start-up."""
    NAMED_TASKS.add(path)
    return TaskName(path)


def resolve(actor: dramatiq.Actor | ActorName) -> dramatiq.Actor:
    return actor.actor if isinstance(actor, ActorName) else actor


def build_message(actor: dramatiq.Actor, args: tuple, kwargs: dict, *, queue: str | None = None) -> dramatiq.Message:
    """The message for one call of ``actor``, routed to ``queue`` when given."""
    actor = resolve(actor)
    message = actor.message_with_options(args=args, kwargs=kwargs)
    if queue is not None and queue != actor.queue_name:
        message = message.copy(queue_name=queues.check(queue))
    return message


def enqueue_on_commit(
    actor: dramatiq.Actor | ActorName,
    *args: Any,
    queue: str | None = None,
    delay: int | None = None,
    using: str | None = None,
    **kwargs: Any,
) -> None:
    """Send the job once the current transaction commits; drop it if it rolls back.

    A worker must never see a row that does not exist yet, so every enqueue that follows a
    database write goes through here. The job is written to the outbox in the same
    transaction, so a broker that is down at commit time delays it instead of losing it.
    Outside a transaction it sends at once.

    Parameters:
      queue: Route to this configured queue instead of the actor's own.
      delay: Wait this long before the job may run, in milliseconds.
    """
    actor = resolve(actor)
    outbox_add([build_message(actor, args, kwargs, queue=queue)], delay=delay, broker=actor.broker, using=using)


def enqueue_rollback_unsafe(
    actor: dramatiq.Actor | ActorName, *args: Any, queue: str | None = None, delay: int | None = None, **kwargs: Any
) -> dramatiq.Message:
    """Send the job now, even inside a transaction that may still roll back.

    Only for callers that have no transaction to wait for (a command run by hand, the
    scheduler); anything following a write uses ``enqueue_on_commit``.
    """
    actor = resolve(actor)
    return actor.broker.enqueue(build_message(actor, args, kwargs, queue=queue), delay=delay)


def unknown_actor_names() -> list[str]:
    """Names given to :func:`actor_named` or :func:`task_named` that no installed app's ``tasks`` module declares."""
    _import_tasks_modules()
    declared = set(dramatiq.get_broker().get_declared_actors())
    return sorted(NAMED - declared) + sorted(path for path in NAMED_TASKS if not _is_task(path))


def _is_task(path: str) -> bool:
    from django_tasks.base import Task

    try:
        return isinstance(import_string(path), Task)
    except ImportError:
        return False


def _import_tasks_modules() -> None:
    autodiscover_modules("tasks")
