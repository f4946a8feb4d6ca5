"""Helpers of the recovery scenario, run in a process of their own with the project's settings.

``python -m bench.workloads.recovery relay ROWS``: fill the outbox with ROWS jobs left behind
by an outage, time one relay; ``backlog JOBS SECONDS``: queue JOBS jobs of SECONDS each;
``crash``: queue one job that kills its worker. Each prints one JSON object.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import timedelta

import django


def relay(rows: int) -> dict:
    from django.utils import timezone

    from bench.app.tasks import noop
    from workers.bulk import chunked
    from workers.models import OutboxMessage
    from workers.outbox import _as_json, outbox_relay

    old = timezone.now() - timedelta(minutes=5)
    for chunk in chunked(range(rows), 10_000):
        created = OutboxMessage.objects.bulk_create(OutboxMessage(message=_as_json(noop.message())) for _ in chunk)
        OutboxMessage.objects.filter(pk__in=[row.pk for row in created]).update(created_at=old)
    started = time.perf_counter()
    sent = outbox_relay()
    seconds = time.perf_counter() - started
    queued = noop.broker.client.llen(f"{noop.broker.namespace}:{noop.queue_name}")
    return {"rows": rows, "sent": sent, "queued": queued, "left": OutboxMessage.objects.count(), "seconds": seconds}


def backlog(jobs: int, seconds: float) -> dict:
    from bench.app.tasks import work
    from workers.bulk import enqueue_many

    sent = enqueue_many(work.message(seconds) for _ in range(jobs))
    return {"queued": len(sent)}


def crash() -> dict:
    from bench.app.tasks import crash as crash_actor

    return {"message_id": crash_actor.send().message_id}


if __name__ == "__main__":
    django.setup()
    mode, *args = sys.argv[1:]
    if mode == "relay":
        print(json.dumps(relay(int(args[0]))))
    elif mode == "backlog":
        print(json.dumps(backlog(int(args[0]), float(args[1]))))
    elif mode == "crash":
        print(json.dumps(crash()))
    else:
        sys.exit(f"unknown mode {mode!r}")
