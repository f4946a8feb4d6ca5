"""Seed job history and metrics, or time the console's history and metrics pages; print the figures as JSON.

``python -m bench.workloads.console_pages seed N`` writes N job runs over the last 7 days and
72 hours of per-minute metrics with SQL statements; ``python -m bench.workloads.console_pages
time R`` loads each page R times through Django's test Client as a logged-in superuser and
prints the p50 and p95 milliseconds of each.
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


def seed(count: int) -> dict:
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
        cursor.execute("ANALYZE workers_jobrun")
        cursor.execute("ANALYZE workers_jobminute")
        cursor.execute("SELECT message_id FROM workers_jobrun ORDER BY id LIMIT 1 OFFSET %s", [count // 2])
        message_id = cursor.fetchone()[0]
    return {"runs": count, "message_id": message_id}


def pages(message_id: str) -> dict[str, tuple[str, dict]]:
    from django.urls import reverse

    history, metrics = reverse("jobs-history"), reverse("jobs-metrics")
    return {
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
        if query.get("after") == "__cursor__":
            query = {"after": cursor_of(newest[-1])}
        cold = bool(query.pop("cold", None))
        timings = []
        for attempt in range(repeat + 3):
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
        print(json.dumps(seed(argument)))
    else:
        print(json.dumps(time_pages(argument, sys.argv[3])))
