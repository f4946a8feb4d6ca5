"""The daily report laid out for people: a text table, and CSV that is safe to open in a spreadsheet."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

from defusedcsv import csv as spreadsheet_csv
from tabulate import tabulate

from reports.models import Report

SUMMARY = [
    ("orders", "Orders"),
    ("paid_orders", "Paid orders"),
    ("revenue", "Revenue"),
    ("average_order_value", "Average order value"),
    ("new_customers", "New customers"),
]
AMOUNTS = {"revenue", "average_order_value"}
FAILURES = {"insufficient_funds": "insufficient funds", "card_expired": "card expired", "failed": "gateway error"}
PRODUCT_HEADERS = ("#", "SKU", "Product", "Quantity", "Revenue")


def report_title(report: Report) -> str:
    return f"Daily report for {report.date.isoformat()} ({report.data['time_zone']})"


def summary_rows(data: dict[str, Any]) -> list[tuple[str, int | Decimal]]:
    """(label, value) of each figure, failed payments by reason last; amounts as Decimal."""
    rows: list[tuple[str, int | Decimal]] = [
        (label, Decimal(data[key]) if key in AMOUNTS else data[key]) for key, label in SUMMARY
    ]
    rows += [
        (f"Payments failed: {FAILURES.get(status, status)}", count) for status, count in data["payments_failed"].items()
    ]
    return rows


def product_rows(data: dict[str, Any]) -> list[tuple[int, str, str, int, Decimal]]:
    """(rank, SKU, name, quantity, revenue) of the top products, best first."""
    return [
        (rank, product["sku"], product["name"], product["quantity"], Decimal(product["revenue"]))
        for rank, product in enumerate(data["top_products"], start=1)
    ]


def report_table(report: Report) -> str:
    """The report as plain-text tables, for a terminal or a text mail."""
    summary = tabulate(summary_rows(report.data), tablefmt="plain", colalign=("left", "right"), disable_numparse=True)
    products = product_rows(report.data)
    top = (
        tabulate(
            products,
            headers=PRODUCT_HEADERS,
            tablefmt="simple",
            colalign=("right", "left", "left", "right", "right"),
            disable_numparse=True,
        )
        if products
        else "No paid orders."
    )
    return "\n\n".join([report_title(report), summary, "Top products by revenue", top]) + "\n"


def report_csv(report: Report) -> str:
    """The report as CSV: the figures, a blank line, then the top products.

    Product names and SKUs come from staff and imports, so a cell that a spreadsheet would
    read as a formula (=, +, -, @, ...) is written with a leading quote; leading whitespace,
    which can hide such a cell from that check, is dropped first. Numbers stay numbers.
    """
    buffer = io.StringIO()
    writer = spreadsheet_csv.writer(buffer)
    writer.writerow(["Figure", "Value"])
    writer.writerows(summary_rows(report.data))
    writer.writerow([])
    writer.writerow(PRODUCT_HEADERS)
    writer.writerows([_cell(value) for value in row] for row in product_rows(report.data))
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    return value.lstrip() if isinstance(value, str) else value
