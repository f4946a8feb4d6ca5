"""A year of orders for the report benchmark, inserted fast: raw rows in chunks (COPY on PostgreSQL).

Run as ``python -m bench.workloads.report_data ORDERS`` with Django's settings in the environment.
The orders spread evenly over the 365 days that ended yesterday, written in time order as a
live shop writes them, with one to three items each, a payment for each order that got that
far, and a customer for every ten orders. Prints the first and last day as JSON. Refuses a
database that has orders already.
"""

from __future__ import annotations

import argparse
import json
import os
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import django

CHUNK = 50_000
PRODUCTS = 1_000
# (status, weight, payment status): most orders are paid and processed; some fail at payment.
OUTCOMES = [
    ("processed", 80, "charged"),
    ("paid", 4, "charged"),
    ("failed", 4, "insufficient_funds"),
    ("failed", 2, "card_expired"),
    ("failed", 2, "failed"),
    ("pending", 6, None),
    ("cancelled", 2, None),
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("orders", type=int)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()

    from django.db import connection, transaction

    from orders.models import Order
    from reports.periods import day_before, day_bounds

    if Order.objects.exists():
        raise SystemExit("the database has orders already; the benchmark needs an empty one")
    last = day_before()
    first = last - timedelta(days=364)
    # Times as naive UTC text, the form Django stores on SQLite and PostgreSQL reads as UTC
    # (Django's connections use UTC), so no row needs converting on the way in.
    start, end = (_utc(day_bounds(first)[0]), _utc(day_bounds(last)[1]))
    rng = random.Random(2026)
    with transaction.atomic():
        prices = seed_products(connection, start)
        customers = seed_customers(connection, rng, max(1, args.orders // 10), start - timedelta(days=365), end)
        seed_orders(connection, rng, args.orders, prices, customers, start, end)
    with connection.cursor() as cursor:
        # What autovacuum would have done by now to a live shop's tables: statistics for the
        # planner and, on PostgreSQL, the visibility map that lets index-only scans skip the heap.
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    print(json.dumps({"first": first.isoformat(), "last": last.isoformat(), "orders": args.orders}))


def seed_products(connection, moment) -> list[Decimal]:
    rng = random.Random(1)
    prices = [Decimal(rng.randrange(199, 9999)) / 100 for _ in range(PRODUCTS)]
    rows = [
        (n + 1, f"SKU-{n + 1:05d}", f"Product {n + 1}", str(prices[n]), 1_000_000, str(moment)) for n in range(PRODUCTS)
    ]
    insert(connection, "orders_product", ["id", "sku", "name", "price", "stock", "updated_at"], rows)
    return prices


def seed_customers(connection, rng: random.Random, count: int, start, end) -> int:
    span = (end - start).total_seconds()
    moments = sorted(rng.random() * span for _ in range(count))
    rows = [
        (n, f"customer{n}@example.com", f"Customer {n}", False, str(start + timedelta(seconds=moment)))
        for n, moment in enumerate(moments, start=1)
    ]
    insert(connection, "orders_customer", ["id", "email", "name", "is_priority", "created_at"], rows)
    return count


def seed_orders(connection, rng: random.Random, count: int, prices: list[Decimal], customers: int, start, end) -> None:
    span = (end - start).total_seconds()
    outcomes = [(status, payment) for status, _, payment in OUTCOMES]
    weights = [weight for _, weight, _ in OUTCOMES]
    # In time order, as a live shop writes them: a day's orders, items and payments sit together.
    moments = sorted(rng.random() * span for _ in range(count))
    item_id = payment_id = 0
    for chunk_start in range(1, count + 1, CHUNK):
        orders, items, payments = [], [], []
        for order_id in range(chunk_start, min(chunk_start + CHUNK, count + 1)):
            created = str(start + timedelta(seconds=moments[order_id - 1]))
            status, payment = rng.choices(outcomes, weights)[0]
            total = Decimal(0)
            for product in rng.sample(range(PRODUCTS), rng.randint(1, 3)):
                quantity = rng.randint(1, 4)
                item_id += 1
                items.append((item_id, order_id, product + 1, quantity, str(prices[product])))
                total += quantity * prices[product]
            orders.append((order_id, rng.randint(1, customers), status, str(total), "tok_ok", created, ""))
            if payment:
                payment_id += 1
                code = "" if payment == "charged" else payment
                payments.append(
                    (
                        payment_id,
                        order_id,
                        str(total),
                        payment,
                        "tok_ok",
                        f"order-{order_id}",
                        "",
                        code,
                        1,
                        created,
                        created,
                    )
                )
        insert(
            connection,
            "orders_order",
            ["id", "customer_id", "status", "total", "payment_method_token", "created_at", "failure_reason"],
            orders,
        )
        insert(connection, "orders_orderitem", ["id", "order_id", "product_id", "quantity", "unit_price"], items)
        insert(
            connection,
            "orders_payment",
            [
                "id",
                "order_id",
                "amount",
                "status",
                "method_token",
                "idempotency_key",
                "gateway_reference",
                "failure_code",
                "attempts",
                "created_at",
                "updated_at",
            ],
            payments,
        )


def insert(connection, table: str, columns: list[str], rows: list[tuple]) -> None:
    names = ", ".join(columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            if "id" in columns:
                cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")
            return
        cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(columns))})", rows)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


if __name__ == "__main__":
    main()
