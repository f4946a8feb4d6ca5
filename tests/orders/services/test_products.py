"""products_upsert: many products created or updated by sku at once, every character of a name kept."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum

from orders.models import InventoryAudit, Product
from orders.product_csv import ProductRow
from orders.services.products import products_ready, products_upsert
from tests.orders.factories import make_product

pytestmark = pytest.mark.django_db

AWKWARD_NAMES = [
    'Mug "XL", large',
    "Card\r\nwith two lines",
    "carriage\ronly",
    "line\nfeed",
    "tab\there",
    "back\\slash \\N",
    "=HYPERLINK(1)",
    "Ünïcødé ☕ 杯子",
    "NULL",
    "",
]


@pytest.mark.parametrize("prepared", [False, True], ids=["rows", "made ready"])
def test_names_come_back_exactly_as_given(prepared):
    rows = [ProductRow(f"SKU-{n}", name, Decimal("1.50"), n) for n, name in enumerate(AWKWARD_NAMES)]

    created, updated = products_upsert(products_ready(rows, for_copy=True) if prepared else rows)

    assert (created, updated) == (len(rows), 0)
    assert dict(Product.objects.values_list("sku", "name")) == {row.sku: row.name for row in rows}


def test_existing_products_are_updated_and_a_repeated_sku_takes_its_last_row():
    make_product(sku="MUG-1", name="Old mug", price=Decimal("1.00"), stock=1)
    rows = [
        ProductRow("MUG-1", "Mug", Decimal("2.00"), 5),
        ProductRow("LAMP-1", "Lamp", Decimal("30.00"), 2),
        ProductRow("LAMP-1", "Desk lamp", Decimal("35.00"), 3),
    ]

    created, updated = products_upsert(rows)

    assert (created, updated) == (1, 2)
    assert set(Product.objects.values_list("sku", "name", "price", "stock")) == {
        ("MUG-1", "Mug", Decimal("2.00"), 5),
        ("LAMP-1", "Desk lamp", Decimal("35.00"), 3),
    }


def test_every_stock_change_gets_an_import_audit_and_stock_equals_the_sum_of_its_audits():
    # Given a product with stock 3 (and its audit), and one whose stock the rows leave alone
    mug = make_product(sku="MUG-1", stock=3)
    InventoryAudit.objects.create(product=mug, change=3, stock_after=3, reason=InventoryAudit.Reason.RESTOCK)
    make_product(sku="CUP-1", stock=0)
    rows = [
        ProductRow("MUG-1", "Mug", Decimal("2.00"), 5),
        ProductRow("CUP-1", "Cup", Decimal("1.00"), 0),
        ProductRow("LAMP-1", "Lamp", Decimal("30.00"), 2),
        ProductRow("LAMP-1", "Desk lamp", Decimal("35.00"), 7),
    ]

    # When they are upserted
    products_upsert(rows, note="import #9")

    # Then each changed stock has one audit saying so, and no unchanged one has any
    audits = set(
        InventoryAudit.objects.filter(reason="import").values_list("product__sku", "change", "stock_after", "note")
    )
    assert audits == {("MUG-1", 2, 5, "import #9"), ("LAMP-1", 7, 7, "import #9")}
    sums = dict(
        InventoryAudit.objects.values("product__sku").annotate(total=Sum("change")).values_list("product__sku", "total")
    )
    assert {sku: sums.get(sku, 0) for sku in ("MUG-1", "CUP-1", "LAMP-1")} == dict(
        Product.objects.values_list("sku", "stock")
    )


def test_rows_that_change_nothing_count_as_updated_and_write_no_audit():
    # Given products imported once
    rows = [ProductRow("MUG-1", "Mug", Decimal("2.00"), 5), ProductRow("CUP-1", "Cup", Decimal("1.00"), 3)]
    products_upsert(rows, note="import #1")
    written = dict(Product.objects.values_list("sku", "updated_at"))

    # When the same rows come again, but for the cup's new name
    created, updated = products_upsert([rows[0], ProductRow("CUP-1", "Tea cup", Decimal("1.00"), 3)], note="import #2")

    # Then both count as updated, the cup is renamed, and neither stock change is audited twice
    assert (created, updated) == (0, 2)
    assert Product.objects.get(sku="CUP-1").name == "Tea cup"
    assert sorted(InventoryAudit.objects.values_list("product__sku", "change", "note")) == [
        ("CUP-1", 3, "import #1"),
        ("MUG-1", 5, "import #1"),
    ]
    if connection.vendor == "postgresql":
        # and PostgreSQL leaves the unchanged mug as it was, not written again
        assert Product.objects.get(sku="MUG-1").updated_at == written["MUG-1"]
        assert Product.objects.get(sku="CUP-1").updated_at > written["CUP-1"]
