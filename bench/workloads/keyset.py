"""Seed orders, or walk them in chunks by keyset or by offset; print the figures as JSON.

``python -m bench.workloads.keyset seed N`` writes N orders with one SQL statement;
``python -m bench.workloads.keyset walk keyset|offset`` visits every order id in chunks of
1,000 and prints the seconds, the chunk count, and the first and last chunk's milliseconds.
"""

from __future__ import annotations

import json
import sys
import time

import django

CHUNK = 1000


def seed(count: int) -> dict:
    from django.db import connection, transaction

    from orders.models import Customer

    with transaction.atomic():
        customer = Customer.objects.create(email="bench@example.com", name="Bench")
        series = (
            "generate_series(1, %s)"
            if connection.vendor == "postgresql"
            else "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %s) SELECT i FROM n)"
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO orders_order"
                " (customer_id, status, total, payment_method_token, created_at, failure_reason)"
                f" SELECT %s, 'processed', 0, 'tok_ok', CURRENT_TIMESTAMP, '' FROM {series} AS s",
                [customer.pk, count],
            )
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return {"orders": count}


def walk(method: str) -> dict:
    from orders.models import Order
    from workers.keyset import keyset_page

    ids = Order.objects.order_by("pk").values_list("pk", flat=True)
    chunk_ms: list[float] = []
    seen, after, started = 0, None, time.perf_counter()
    while True:
        chunk_started = time.perf_counter()
        page = (
            keyset_page(Order.objects.all(), after=after, size=CHUNK)
            if method == "keyset"
            else list(ids[seen : seen + CHUNK])
        )
        chunk_ms.append((time.perf_counter() - chunk_started) * 1000)
        if not page:
            break
        seen += len(page)
        after = page[-1]
    return {
        "method": method,
        "rows": seen,
        "chunks": len(chunk_ms) - 1,
        "seconds": time.perf_counter() - started,
        "first_chunk_ms": chunk_ms[0],
        "last_chunk_ms": chunk_ms[-2] if len(chunk_ms) > 1 else 0.0,
    }


if __name__ == "__main__":
    django.setup()
    command = sys.argv[1]
    result = seed(int(sys.argv[2])) if command == "seed" else walk(sys.argv[2])
    print(json.dumps(result))
