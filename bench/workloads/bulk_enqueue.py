"""Send no-op messages through the project's broker, one by one or in bulk; print the seconds as JSON.

Run as ``python -m bench.workloads.bulk_enqueue MODE JOBS`` with Django's settings in the
environment: MODE ``one`` calls ``actor.send`` per message, ``bulk`` calls ``enqueue_many``
once. Both go through the settings' full middleware list.
"""

from __future__ import annotations

import json
import sys
import time

import django


def main(mode: str, jobs: int) -> None:
    django.setup()
    from bench.app.tasks import noop
    from workers.bulk import enqueue_many

    messages = [noop.message() for _ in range(jobs)]
    started = time.perf_counter()
    if mode == "bulk":
        enqueue_many(messages)
    else:
        for message in messages:
            noop.broker.enqueue(message)
    seconds = time.perf_counter() - started
    queued = noop.broker.client.llen(f"{noop.broker.namespace}:{noop.queue_name}")
    print(json.dumps({"mode": mode, "jobs": jobs, "seconds": seconds, "queued": queued}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
