"""Seed job history, metrics, dead letters and queued jobs, or time every console page; print the figures as JSON.

``python -m bench.workloads.console_pages seed N D Q`` writes N job runs over the last 7 days,
72 hours of per-minute metrics and D dead letters with SQL statements, and sends Q jobs to the
broker's Redis (ready, delayed, and some delayed ones held by a live-looking worker);
``python -m bench.workloads.console_pages time R ID`` loads each page R times through Django's
test Client as a logged-in superuser and prints the p50 and p95 milliseconds of each.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import django

ACTORS = ("process_order", "update_inventory", "process_payment", "send_email", "import_data", "process_item")
QUEUES = ("default", "default", "urgent", "mailers", "low", "low")
#: Each error text is on this share of runs (the failed ones).
ERROR_EVERY = 20
DEAD_REASONS = ("exhausted", "discarded", "crashed", "malformed")
#: The worker that seems to run and hold jobs: its Dramatiq id, and its name as the presence middleware writes it.
WORKER_ID = "bench-worker-0000-0000-000000000000"
WORKER_NAME = "bench-host:4242"
#: Of the jobs queued: this share ready, this share delayed (a tenth of them retrying); of the
#: delayed ones, this share taken by the live-looking worker into its delay-queue ack set.
READY_SHARE, DELAYED_SHARE, HELD_SHARE = 0.6, 0.4, 0.25
UNCOMPACTED = "metrics, 72 h, read afresh, rows as the processes wrote them"
COMPACTION = "housekeeping merges the closed minutes"


def seed(count: int, dead: int, queued: int) -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        # Runs spread evenly over 7 days, newest last; one in ERROR_EVERY failed, with an error.
        cursor.execute(
            "INSERT INTO workers_jobrun (message_id, actor_name, queue_name, outcome, attempt, duration_ms, error,"
            " args_hash, worker, started_at, finished_at)"
            " SELECT md5(i::text), (%s::text[])[i %% 6 + 1], (%s::text[])[i %% 6 + 1],"
            " CASE WHEN i %% %s = 0 THEN 'failed' ELSE 'succeeded' END, 1, (i %% 500)::float,"
            " CASE WHEN i %% %s = 0 THEN 'GatewayTimeout: gateway slow for order ' || i ELSE '' END,"
            " encode(sha256(((i %% 10000)::text)::bytea), 'hex'), 'bench:' || (i %% 2),"
            " now() - interval '7 days' * (1 - i::float / %s) - interval '10 milliseconds',"
            " now() - interval '7 days' * (1 - i::float / %s)"
            " FROM generate_series(1, %s) AS i",
            [list(ACTORS), list(QUEUES), ERROR_EVERY, ERROR_EVERY, count, count, count],
        )
        # 72 hours of minutes for each actor in two worker processes.
        cursor.execute(
            "INSERT INTO workers_jobminute (minute, actor_name, queue_name, worker, succeeded, failed, retried,"
            " cancelled, durations)"
            " SELECT date_trunc('minute', now()) - interval '1 minute' * m, a.actor, a.queue, 'bench:' || w,"
            " 50 + m %% 7, m %% 3, m %% 2, 0, '[5, 10, 20, 10, 5, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0]'::jsonb"
            " FROM generate_series(0, 72 * 60 - 1) AS m, generate_series(0, 1) AS w,"
            " unnest(%s::text[], %s::text[]) AS a(actor, queue)",
            [list(ACTORS), list(QUEUES)],
        )
        # Dead letters over the last 30 days, newest last; a tenth resolved, a fifth replayed.
        cursor.execute(
            "INSERT INTO workers_deadletter (message_id, actor_name, queue_name, message, reason, error, traceback,"
            " attempts, failed_at, replayed_at, replayed_message_id, resolved_at)"
            " SELECT 'dl-' || md5(i::text), (%s::text[])[i %% 6 + 1], (%s::text[])[i %% 6 + 1],"
            " jsonb_build_object('message_id', 'dl-' || md5(i::text), 'args', jsonb_build_array(i)),"
            " (%s::text[])[i %% 4 + 1], 'GatewayTimeout: gateway slow for order ' || i, 'Traceback ...', 3,"
            " now() - interval '30 days' * (1 - i::float / %s),"
            " CASE WHEN i %% 5 = 0 THEN now() END, CASE WHEN i %% 5 = 0 THEN md5(i::text) ELSE '' END,"
            " CASE WHEN i %% 10 = 1 THEN now() END"
            " FROM generate_series(1, %s) AS i",
            [list(ACTORS), list(QUEUES), list(DEAD_REASONS), dead, dead],
        )
        cursor.execute("ANALYZE workers_deadletter")
        cursor.execute("ANALYZE workers_jobrun")
        cursor.execute("ANALYZE workers_jobminute")
        cursor.execute("SELECT message_id FROM workers_jobrun ORDER BY id LIMIT 1 OFFSET %s", [count // 2])
        message_id = cursor.fetchone()[0]
    return {"runs": count, "message_id": message_id, "dead_letters": dead, "queued": seed_queued(queued)}


def seed_queued(total: int) -> dict:
    """Send ``total`` jobs across the queues by weight: most ready, the rest delayed (some retrying),
    a share of the delayed ones moved into a live-looking worker's delay-queue ack set."""
    import dramatiq
    from dramatiq import Message

    from workers import queues
    from workers.bulk import enqueue_many
    from workers.dramatiq_internals.keys import acks_key, dq_name, queue_key

    broker = dramatiq.get_broker()
    weights = queues.weights()
    names = queues.names()
    counts = {"ready": 0, "delayed": 0, "held": 0}
    for name in names:
        share = round(total * weights[name] / sum(weights.values()))
        ready, delayed = round(share * READY_SHARE), round(share * DELAYED_SHARE)

        def message(n: int, *, retrying: bool = False, queue_name: str = name) -> Message:
            options = {"retries": 2, "traceback": "Traceback ...\nGatewayTimeout: slow"} if retrying else {}
            return Message(queue_name=queue_name, actor_name="noop", args=(n,), kwargs={}, options=options)

        enqueue_many((message(n) for n in range(ready)), broker=broker)
        # Due from a minute to a day from now, spread so the soonest are not the first sent.
        for chunk_start in range(0, delayed, 1000):
            chunk = [message(n, retrying=n % 10 == 0) for n in range(chunk_start, min(delayed, chunk_start + 1000))]
            enqueue_many(chunk, broker=broker, delay=60_000 + (chunk_start * 7919) % 86_400_000)
        held = round(delayed * HELD_SHARE)
        client = broker.client
        ids = client.lpop(queue_key(broker, dq_name(name)), held) or []
        if ids:
            client.sadd(acks_key(broker, WORKER_ID, dq_name(name)), *ids)
        counts["ready"] += ready
        counts["delayed"] += delayed - len(ids)
        counts["held"] += len(ids)
    keep_alive()
    return counts


def keep_alive() -> None:
    """Beat for the live-looking worker, as its Dramatiq heartbeat and its presence would: it runs a few jobs."""
    import dramatiq

    from workers.dramatiq_internals.keys import heartbeats_key
    from workers.middleware.presence import presence_key, state_key
    from workers.platform_redis import platform_client

    broker = dramatiq.get_broker()
    now = time.time()
    broker.client.zadd(heartbeats_key(broker), {WORKER_ID: int(now * 1000)})
    running = [
        {"message_id": f"run-{n}", "actor_name": "noop", "queue_name": "default", "attempt": 1, "started_at": now - n}
        for n in range(8)
    ]
    state = {
        "name": WORKER_NAME,
        "host": WORKER_NAME.rpartition(":")[0],
        "pid": int(WORKER_NAME.rpartition(":")[2]),
        "worker_id": WORKER_ID,
        "queues": ["urgent", "default", "mailers", "low"],
        "threads": 8,
        "started_at": now - 3600,
        "beat_at": now,
        "done": 123456,
        "running": running,
        "waiting_count": 24,
        "waiting": [
            {"message_id": f"wait-{n}", "actor_name": "noop", "queue_name": "default", "attempt": 1} for n in range(24)
        ],
    }
    client = platform_client(broker)
    client.zadd(presence_key(broker), {WORKER_NAME: int(now * 1000)})
    client.set(state_key(broker, WORKER_NAME), json.dumps(state), px=60_000)


def pages(message_id: str) -> dict[str, tuple[str, dict]]:
    from django.urls import reverse

    history, metrics = reverse("jobs-history"), reverse("jobs-metrics")
    dead_letters = reverse("admin:workers_deadletter_changelist")
    return {
        # Read first, before housekeeping's compaction merges the closed minutes (COMPACTION below).
        UNCOMPACTED: (metrics, {"window": "72h", "cold": "1"}),
        COMPACTION: ("", {}),
        "overview": (reverse("jobs-dashboard"), {}),
        "queues": (reverse("jobs-queues"), {}),
        "running": (reverse("jobs-running"), {}),
        "workers": (reverse("jobs-workers"), {}),
        "scheduled, all queues": (reverse("jobs-scheduled"), {}),
        "scheduled, one queue": (reverse("jobs-scheduled"), {"queue": "default"}),
        "schedule": (reverse("jobs-schedule"), {}),
        "dead letters, newest 50": (dead_letters, {}),
        "dead letters, one actor": (dead_letters, {"actor_name": "process_payment"}),
        "dead letters, searched by error text": (dead_letters, {"q": "gateway slow"}),
        "dead letters, searched, found nowhere": (dead_letters, {"q": "no such error"}),
        "dead letters, one reason, searched": (dead_letters, {"reason__exact": "exhausted", "q": "order 4242"}),
        "history, newest 50": (history, {}),
        "history, one actor": (history, {"actor": "process_payment"}),
        "history, a message id": (history, {"q": message_id}),
        "history, error text (24 h)": (history, {"q": "gateway slow"}),
        "history, error text found nowhere (24 h)": (history, {"q": "no such error"}),
        "history, second page": (history, {"after": "__cursor__"}),
        "metrics, 72 h": (metrics, {"window": "72h"}),
        "metrics, 72 h, read afresh (cache cleared)": (metrics, {"window": "72h", "cold": "1"}),
        "metrics, 72 h, one actor, read afresh": (metrics, {"window": "72h", "actor": "process_payment", "cold": "1"}),
        "metrics, 1 h (never cached)": (metrics, {"window": "1h"}),
    }


def time_pages(repeat: int, message_id: str) -> dict:
    from django.contrib.auth.models import User
    from django.core.cache import cache
    from django.test import Client

    from workers.console.history import cursor_of
    from workers.models import JobRun

    user, _ = User.objects.get_or_create(username="bench", defaults={"is_staff": True, "is_superuser": True})
    client = Client()
    client.force_login(user)
    newest = list(JobRun.objects.order_by("-finished_at", "-id")[:50])
    results = {}
    for name, (url, query) in pages(message_id).items():
        if name == COMPACTION:
            from workers.metrics_compaction import metrics_compact
            from workers.models import JobMinute

            before = JobMinute.objects.count()
            started = time.perf_counter()
            metrics_compact(max_spans=1000)
            seconds = time.perf_counter() - started
            results[name] = {"rows before": before, "rows after": JobMinute.objects.count(), "seconds": seconds}
            continue
        if query.get("after") == "__cursor__":
            query = {"after": cursor_of(newest[-1])}
        cold = bool(query.pop("cold", None))
        timings = []
        for attempt in range(repeat + 3):
            keep_alive()
            if cold:
                cache.clear()
            started = time.perf_counter()
            response = client.get(url, query)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                raise RuntimeError(f"{name}: HTTP {response.status_code}")
            if attempt >= 3:  # the first loads warm caches and templates
                timings.append(elapsed)
        timings.sort()
        results[name] = {
            "p50": statistics.median(timings),
            "p95": timings[max(0, round(0.95 * len(timings)) - 1)],
        }
    return results


if __name__ == "__main__":
    django.setup()
    command, argument = sys.argv[1], int(sys.argv[2])
    if command == "seed":
        print(json.dumps(seed(argument, int(sys.argv[3]), int(sys.argv[4]))))
    else:
        print(json.dumps(time_pages(argument, sys.argv[3])))
