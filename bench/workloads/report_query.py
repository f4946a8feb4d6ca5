"""Time the daily report's figures for one day against the one raw SQL query that computes them.

Run as ``python -m bench.workloads.report_query DAY RUNS`` with Django's settings in the
environment; prints JSON with the median milliseconds of each, taken in turns after a warm-up,
and whether both gave the same figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import django

#: Everything the report needs in one statement: the day's orders summed, its sign-ups counted,
#: its failed payments by status, and its ten best products. One row per figure or product.
RAW_SQL = """
SELECT 'orders' AS kind, CAST(NULL AS BIGINT) AS product_id, CAST(NULL AS TEXT) AS sku,
       CAST(NULL AS TEXT) AS name, COUNT(*) AS count,
       SUM(CASE WHEN status IN ('paid', 'processed') THEN 1 ELSE 0 END) AS paid,
       SUM(CASE WHEN status IN ('paid', 'processed') THEN total ELSE 0 END) AS amount
  FROM orders_order WHERE created_at >= %(start)s AND created_at < %(end)s
UNION ALL
SELECT 'customers', NULL, NULL, NULL, COUNT(*), NULL, NULL
  FROM orders_customer WHERE created_at >= %(start)s AND created_at < %(end)s
UNION ALL
SELECT 'failed:' || p.status, NULL, NULL, NULL, COUNT(*), NULL, NULL
  FROM orders_payment p JOIN orders_order o ON o.id = p.order_id
 WHERE o.created_at >= %(start)s AND o.created_at < %(end)s
   AND p.status IN ('insufficient_funds', 'card_expired', 'failed')
 GROUP BY p.status
UNION ALL
SELECT * FROM (
  SELECT 'product', i.product_id, pr.sku, pr.name, SUM(i.quantity), CAST(NULL AS BIGINT),
         SUM(i.quantity * i.unit_price) AS amount
    FROM orders_orderitem i
    JOIN orders_order o ON o.id = i.order_id
    JOIN orders_product pr ON pr.id = i.product_id
   WHERE o.created_at >= %(start)s AND o.created_at < %(end)s AND o.status IN ('paid', 'processed')
   GROUP BY i.product_id, pr.sku, pr.name
   ORDER BY amount DESC, i.product_id
   LIMIT 10
) AS top_products
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("day", type=date.fromisoformat)
    parser.add_argument("runs", type=int)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()

    from django.db import connection

    from reports.periods import day_bounds
    from reports.selectors import report_daily_figures

    start, end = day_bounds(args.day)
    params = {
        "start": connection.ops.adapt_datetimefield_value(start),
        "end": connection.ops.adapt_datetimefield_value(end),
    }

    def raw() -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute(RAW_SQL, params)
            return cursor.fetchall()

    def report() -> dict:
        return report_daily_figures(day=args.day)

    figures, rows = report(), raw()
    timings: dict[str, list[float]] = {"report": [], "raw": []}
    for _ in range(args.runs):
        for name, run in (("report", report), ("raw", raw)):
            started = time.perf_counter()
            run()
            timings[name].append((time.perf_counter() - started) * 1000)
    print(
        json.dumps(
            {
                "orders_on_day": figures["orders"],
                "report_ms": statistics.median(timings["report"]),
                "raw_ms": statistics.median(timings["raw"]),
                "same_figures": _as_figures(rows) == _comparable(figures),
            }
        )
    )


def _money(value) -> str:
    return str(Decimal(str(value or 0)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _as_figures(rows: list[tuple]) -> dict:
    """The raw rows in the shape of the report's own figures, for the comparison."""
    summary = next(row for row in rows if row[0] == "orders")
    return {
        "orders": summary[4],
        "paid_orders": int(summary[5] or 0),
        "revenue": _money(summary[6]),
        "new_customers": next(row[4] for row in rows if row[0] == "customers"),
        "failed": {row[0].split(":", 1)[1]: row[4] for row in rows if row[0].startswith("failed:")},
        "top": [(int(row[1]), row[4], _money(row[6])) for row in rows if row[0] == "product"],
    }


def _comparable(figures: dict) -> dict:
    return {
        "orders": figures["orders"],
        "paid_orders": figures["paid_orders"],
        "revenue": figures["revenue"],
        "new_customers": figures["new_customers"],
        "failed": {status: count for status, count in figures["payments_failed"].items() if count},
        "top": [(item["product_id"], item["quantity"], item["revenue"]) for item in figures["top_products"]],
    }


if __name__ == "__main__":
    main()
