"""Where task results live: one Redis hash per task run, kept ``settings.TASK_RESULT_TTL`` after its last change.

Redis rather than a table: the worker writes a result at each attempt's start and end, which
must cost next to nothing beside a short job (a table would add two transactions to each), needs
no migration, and expires on its own instead of needing a pruning job. It is the platform's Redis
(the broker's, or ``REDIS_URL`` on RabbitMQ). On the StubBroker, which keeps its messages in one
process's memory, results are kept there too.

Each write sets some fields, sets others only where absent (``keep``: the record written at
commit and the worker's never undo each other), and may set the status with a ``phase``: 2 x
attempt at an attempt's start, one more at its end. A status is only written if its phase is at
least the stored one, so writes that reach Redis out of order (a start sent in the background
after the end written at once, a late end after the retry began elsewhere) never put an older
status back.
"""

from __future__ import annotations

import json
import threading
import time

import dramatiq
from django.conf import settings

from workers.platform_redis import platform_client, platform_namespace
from workers.tasks_backend.writer import BackgroundWrites, Write


def result_ttl_ms(delay_ms: int | None = None) -> int:
    """How long a result is kept after its last write, in milliseconds (plus a delay still to wait)."""
    return int(settings.TASK_RESULT_TTL * 1000) + (delay_ms or 0)


#: Writes to results, one per key. KEYS: the results' keys. ARGV: expiry in ms, the writes as a JSON
#: list in the order of KEYS (each {"set": {...}, "keep": {...}} and maybe "status" with its "phase"),
#: and "1" to return the first result as it is after its write.
WRITE_SCRIPT = """
local writes = cjson.decode(ARGV[2])
for index, key in ipairs(KEYS) do
  local write = writes[index]
  if write.phase and write.phase >= tonumber(redis.call('HGET', key, 'phase') or '-1') then
    redis.call('HSET', key, 'phase', write.phase, 'status', write.status)
  end
  for name, value in pairs(write.set) do redis.call('HSET', key, name, value) end
  for name, value in pairs(write.keep) do redis.call('HSETNX', key, name, value) end
  redis.call('PEXPIRE', key, ARGV[1])
end
if ARGV[3] == '1' then return redis.call('HGETALL', KEYS[1]) end
return nil
"""


class RedisResults:
    """Results in Redis hashes: one script call writes one result now, or all the process's waiting writes."""

    def __init__(self, client, namespace: str) -> None:
        self.client = client
        self.prefix = f"{namespace}:task-results:"
        self.script = client.register_script(WRITE_SCRIPT)
        self.background = BackgroundWrites(self._send)

    def write(self, result_id: str, fields: dict[str, str], *, keep=None, status=None, phase=None, read=False):
        """Write now, after this process's waiting writes; with ``read``, return the record as it is after."""
        self.background.flush()  # so that a start waiting to be sent does not arrive after this end
        write = Write(fields, keep or {}, status, phase)
        reply = self.script(keys=[self.prefix + result_id], args=[result_ttl_ms(), _json([write]), "1" if read else ""])
        return _decoded(dict(zip(reply[::2], reply[1::2], strict=True))) if read else None

    def write_soon(self, result_id: str, fields: dict[str, str], *, keep=None, status=None, phase=None) -> None:
        """Write within a few milliseconds, batched with the process's other writes (``writer.py``)."""
        self.background.add(self.prefix + result_id, Write(fields, keep or {}, status, phase))

    def expire(self, result_id: str, ttl_ms: int) -> None:
        self.client.pexpire(self.prefix + result_id, ttl_ms)

    def read(self, result_id: str) -> dict[str, str]:
        return _decoded(self.client.hgetall(self.prefix + result_id))

    def _send(self, batch: dict[str, Write]) -> None:
        self.script(keys=list(batch), args=[result_ttl_ms(), _json(batch.values()), ""])


def _json(writes) -> str:
    encoded = []
    for write in writes:
        item = {"set": write.fields, "keep": write.keep}
        if write.phase is not None:
            item.update(status=write.status, phase=write.phase)
        encoded.append(item)
    return json.dumps(encoded)


class MemoryResults:
    """Results in this process's memory, with the same rules and expiry, for the StubBroker."""

    def __init__(self) -> None:
        self.records: dict[str, tuple[float, dict[str, str]]] = {}
        self.mutex = threading.Lock()

    def write(self, result_id: str, fields: dict[str, str], *, keep=None, status=None, phase=None, read=False):
        with self.mutex:
            record = {**self._live(result_id), **fields}
            if phase is not None and int(phase) >= int(record.get("phase", -1)):
                record.update(phase=str(phase), status=status)
            for name, value in (keep or {}).items():
                record.setdefault(name, value)
            self.records[result_id] = (time.monotonic() + result_ttl_ms() / 1000, record)
            return dict(record) if read else None

    write_soon = write

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
_stores: dict[int, tuple[dramatiq.Broker, RedisResults | MemoryResults]] = {}


def result_store(broker: dramatiq.Broker) -> RedisResults | MemoryResults:
    """The broker's result store, made once per broker."""
    known = _stores.get(id(broker))
    if known is None or known[0] is not broker:
        client = platform_client(broker)
        store = _memory if client is None else RedisResults(client, platform_namespace(broker))
        known = _stores[id(broker)] = (broker, store)
    return known[1]


def _decoded(raw: dict) -> dict[str, str]:
    return {
        (name.decode() if isinstance(name, bytes) else name): (value.decode() if isinstance(value, bytes) else value)
        for name, value in raw.items()
    }
