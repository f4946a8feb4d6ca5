"""Task results: one Redis hash per task run, kept ``settings.TASK_RESULT_TTL`` seconds after its last change.

Redis rather than a table: a result is written twice per attempt (start, end) by the worker,
in one round trip each, never needs a migration, and expires on its own instead of needing a
pruning job; it lives in the platform's Redis (the broker's, or ``REDIS_URL`` on RabbitMQ). On
the StubBroker, which keeps its messages in one process's memory, results are kept there too.

Fields are strings: ``task`` (dotted path), ``backend``, ``queue_name``, ``priority``,
``args`` and ``kwargs`` (JSON), ``status``, ``enqueued_at``, ``started_at``,
``last_attempted_at``, ``finished_at`` (ISO 8601), ``return_value`` (JSON), and one
``worker:<attempt>`` and ``error:<attempt>`` (JSON) per attempt. Writes set some fields only if
they are absent (``keep``), so the record written at commit and the worker's, in either order,
never undo each other.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime

import dramatiq
from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.utils.module_loading import import_string
from django_tasks.base import Task, TaskError, TaskResult, TaskResultStatus

from workers.platform_redis import platform_client, platform_namespace


def result_ttl_ms(delay_ms: int | None = None) -> int:
    """How long a result is kept after its last write, in milliseconds (plus a delay still to wait)."""
    return int(settings.TASK_RESULT_TTL * 1000) + (delay_ms or 0)


class RedisResults:
    """Results in Redis hashes, each write one round trip."""

    def __init__(self, client, namespace: str) -> None:
        self.client = client
        self.prefix = f"{namespace}:task-results:"

    def write(self, result_id: str, fields: dict[str, str], *, keep: dict | None = None, read: bool = False):
        key = self.prefix + result_id
        with self.client.pipeline(transaction=False) as pipe:
            pipe.hset(key, mapping=fields)
            for name, value in (keep or {}).items():
                pipe.hsetnx(key, name, value)
            pipe.pexpire(key, result_ttl_ms())
            if read:
                pipe.hgetall(key)
            replies = pipe.execute()
        return _decoded(replies[-1]) if read else None

    def expire(self, result_id: str, ttl_ms: int) -> None:
        self.client.pexpire(self.prefix + result_id, ttl_ms)

    def read(self, result_id: str) -> dict[str, str]:
        return _decoded(self.client.hgetall(self.prefix + result_id))


class MemoryResults:
    """Results in this process's memory, with the same expiry, for the StubBroker."""

    def __init__(self) -> None:
        self.records: dict[str, tuple[float, dict[str, str]]] = {}
        self.mutex = threading.Lock()

    def write(self, result_id: str, fields: dict[str, str], *, keep: dict | None = None, read: bool = False):
        with self.mutex:
            record = {**self._live(result_id), **fields}
            for name, value in (keep or {}).items():
                record.setdefault(name, value)
            self.records[result_id] = (time.monotonic() + result_ttl_ms() / 1000, record)
            return dict(record) if read else None

    def expire(self, result_id: str, ttl_ms: int) -> None:
        with self.mutex:
            if result_id in self.records:
                self.records[result_id] = (time.monotonic() + ttl_ms / 1000, self.records[result_id][1])

    def read(self, result_id: str) -> dict[str, str]:
        with self.mutex:
            return dict(self._live(result_id))

    def _live(self, result_id: str) -> dict[str, str]:
        expires, record = self.records.get(result_id, (0.0, {}))
        return record if expires > time.monotonic() else {}


_memory = MemoryResults()


def result_store(broker: dramatiq.Broker) -> RedisResults | MemoryResults:
    client = platform_client(broker)
    return _memory if client is None else RedisResults(client, platform_namespace(broker))


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


def result_from_record(result_id: str, record: dict[str, str]) -> TaskResult:
    """The ``TaskResult`` a stored record describes."""
    task = task_at(record["task"], result_id).using(
        queue_name=record.get("queue_name"),
        priority=int(record.get("priority", 0)),
        backend=record.get("backend"),
        run_after=_moment(record.get("run_after")),
    )
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


def _decoded(raw: dict) -> dict[str, str]:
    return {
        (name.decode() if isinstance(name, bytes) else name): (value.decode() if isinstance(value, bytes) else value)
        for name, value in raw.items()
    }
