"""Test helpers: inspect and drain enqueued jobs on the StubBroker; real Redis and workers come from processes.

``Jobs`` plays the part of ActiveJob's TestHelper: it lists what was enqueued and runs it in
the calling thread (so inside the test's own transaction), through the whole middleware stack.
Dramatiq has no synchronous drain of its own, so that loop is written here. ``RedisServer`` and
``WorkerProcess`` (``workers.processes``, importable from here too) start the real thing for the
delivery tests.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import dramatiq
from django_dramatiq.middleware import DbConnectionsMiddleware
from dramatiq import Message
from dramatiq.broker import MessageProxy
from dramatiq.common import dq_name, q_name

from workers.dramatiq_internals.worker import process_in_process
from workers.middleware.unique import UniqueJobs
from workers.processes import BASE_DIR, RedisServer, WorkerProcess, database_url, free_port, wait_until

__all__ = [
    "BASE_DIR",
    "EnqueuedJob",
    "Jobs",
    "RedisServer",
    "WorkerProcess",
    "database_url",
    "declare_actors",
    "free_port",
    "wait_until",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EnqueuedJob:
    actor_name: str
    queue_name: str
    args: tuple
    kwargs: dict
    message_id: str
    delayed: bool


def job_name(job) -> str:
    """The actor name jobs of ``job`` carry: an actor's, a task's (Django's tasks API: its dotted path), or a name."""
    if isinstance(job, dramatiq.Actor):
        return job.actor_name
    return getattr(job, "module_path", job)


class Jobs:
    """The jobs waiting on a StubBroker, and a way to run them now."""

    def __init__(self, broker: dramatiq.Broker | None = None) -> None:
        self.broker = broker or dramatiq.get_broker()

    def enqueued(self, actor=None, *, queue: str | None = None) -> list[EnqueuedJob]:
        """Jobs waiting (delayed ones included), optionally only one actor's or one queue's."""
        name = job_name(actor) if actor is not None else None
        jobs = []
        for queue_name, pending in self.broker.queues.items():
            for data in list(pending.queue):
                message = Message.decode(data)
                job = EnqueuedJob(
                    actor_name=message.actor_name,
                    queue_name=q_name(message.queue_name),
                    args=tuple(message.args),
                    kwargs=dict(message.kwargs),
                    message_id=message.message_id,
                    delayed=queue_name != q_name(queue_name),
                )
                if (name is None or job.actor_name == name) and (queue is None or job.queue_name == queue):
                    jobs.append(job)
        return jobs

    def assert_enqueued(
        self, actor, *args: Any, queue: str | None = None, count: int | None = None, **kwargs: Any
    ) -> list[EnqueuedJob]:
        """Assert that ``actor`` was enqueued with these arguments (and on this queue, this often)."""
        matching = [
            job
            for job in self.enqueued(actor, queue=queue)
            if (not args or job.args == args) and (not kwargs or job.kwargs == kwargs)
        ]
        seen = [(job.actor_name, job.queue_name, job.args, job.kwargs) for job in self.enqueued()]
        if count is None:
            assert matching, f"{job_name(actor)}{args or ''}{kwargs or ''} was not enqueued; enqueued: {seen}"
        else:
            assert len(matching) == count, (
                f"{job_name(actor)} enqueued {len(matching)} times, expected {count}; enqueued: {seen}"
            )
        return matching

    def assert_nothing_enqueued(self) -> None:
        seen = self.enqueued()
        assert not seen, f"expected no jobs, found {seen}"

    def clear(self) -> None:
        """Empty the queues and the dead letters, and forget the unique jobs' locks."""
        self.broker.flush_all()
        for middleware in self.broker.middleware:
            if isinstance(middleware, UniqueJobs):
                middleware.reset()
        for dead in self.broker.dead_letters_by_queue.values():
            dead.clear()

    @property
    def dead_letters(self) -> list[MessageProxy]:
        """Messages failed for good (discarded, exhausted, malformed)."""
        return self.broker.dead_letters

    def drain(self, *, max_jobs: int = 10_000) -> int:
        """Run waiting jobs in this thread until none is left, including those they enqueue.

        Delayed jobs (retries, scheduled sends) run at once, as if their time had come.
        Returns the number of jobs run.
        """
        processed = 0
        while (message := self._next_message()) is not None:
            if processed >= max_jobs:
                raise RuntimeError(f"drain stopped after {max_jobs} jobs: do the jobs enqueue each other forever?")
            self._process(message)
            processed += 1
        return processed

    def run_next(self) -> bool:
        """Run the next waiting job only (a delayed one as if its time had come); False if none waits."""
        message = self._next_message()
        if message is not None:
            self._process(message)
        return message is not None

    def _next_message(self) -> MessageProxy | None:
        for queue_name in sorted(self.broker.queues, key=lambda name: name != q_name(name)):
            pending = self.broker.queues[queue_name]
            if pending.qsize():
                message = Message.decode(pending.get_nowait())
                pending.task_done()
                if queue_name == dq_name(q_name(queue_name)):
                    options = {key: value for key, value in message.options.items() if key != "eta"}
                    message = message.copy(queue_name=q_name(queue_name), options=options)
                return MessageProxy(message)
        return None

    def _process(self, message: MessageProxy) -> None:
        process_in_process(self.broker, message, emit_before=self._emit_before, emit_after=self._emit_after)
        if message.failed:
            self.broker.dead_letters_by_queue[message.queue_name].append(message)

    def _middleware(self) -> list:
        # Closing "old" connections between jobs would close the test's own transaction.
        return [m for m in self.broker.middleware if not isinstance(m, DbConnectionsMiddleware)]

    def _emit_before(self, signal_name: str, *args, **kwargs) -> None:
        for middleware in self._middleware():
            getattr(middleware, "before_" + signal_name)(self.broker, *args, **kwargs)

    def _emit_after(self, signal_name: str, *args, **kwargs) -> None:
        # As Broker.emit_after: a failing after-hook is logged and the others still run.
        for middleware in reversed(self._middleware()):
            try:
                getattr(middleware, "after_" + signal_name)(self.broker, *args, **kwargs)
            except Exception:
                logger.critical("Unexpected failure in after_%s of %r.", signal_name, middleware, exc_info=True)


def declare_actors(broker: dramatiq.Broker, *actors: dramatiq.Actor) -> dramatiq.Broker:
    """Declare copies of ``actors`` (same function, name, queue and options) on another broker.

    For a test process that sends through a broker of its own (a RedisBroker with chosen
    middleware) while the actors live on the StubBroker: its middleware then sees their options.
    """
    for actor in actors:
        dramatiq.Actor(
            actor.fn,
            broker=broker,
            actor_name=actor.actor_name,
            queue_name=actor.queue_name,
            priority=actor.priority,
            options=dict(actor.options),
        )
    return broker
