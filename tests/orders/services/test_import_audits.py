"""Import audit rows stay exact while orders change the same products: stock always equals the sum of its audits."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.db.models import F, Sum

from orders.models import Import, InventoryAudit, Product
from orders.services import import_chunk_commit
from orders.services.imports import import_run
from tests.orders.factories import make_import, make_product, products_csv

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the REPEATABLE READ chunk is PostgreSQL's"),
]


def audited_stock(sku: str) -> int:
    return InventoryAudit.objects.filter(product__sku=sku).aggregate(total=Sum("change"))["total"] or 0


def restock_elsewhere(sku: str, change: int) -> None:
    """A stock change committed by another connection, as an order or an adjustment job makes it."""

    def restock() -> None:
        product = Product.objects.get(sku=sku)
        Product.objects.filter(pk=product.pk).update(stock=F("stock") + change)
        product.refresh_from_db()
        InventoryAudit.objects.create(product=product, change=change, stock_after=product.stock, reason="restock")
        connection.close()

    thread = threading.Thread(target=restock)
    thread.start()
    thread.join()


def test_a_stock_changed_by_someone_else_mid_chunk_is_audited_from_what_it_really_was(monkeypatch):
    # Given a product with 10 in stock (audited), and an import setting it to 50 while, after the
    # chunk's transaction began, another job adds 5 to it
    mug = make_product(sku="MUG-1", stock=10)
    InventoryAudit.objects.create(product=mug, change=10, stock_after=10, reason="restock")
    product_import = make_import(products_csv("MUG-1,Mug,1.00,50", "CUP-1,Cup,1.00,3"))
    real_upsert = import_chunk_commit.products_upsert
    calls = []

    def upsert_with_a_restock_meanwhile(ready, **options):
        calls.append(1)
        if len(calls) == 1:
            restock_elsewhere("MUG-1", 5)
        return real_upsert(ready, **options)

    monkeypatch.setattr(import_chunk_commit, "products_upsert", upsert_with_a_restock_meanwhile)

    # When the import runs
    done = import_run(import_id=product_import.pk)

    # Then the chunk was written again, once, and each stock equals the sum of its audits
    assert done.status == Import.Status.COMPLETED
    assert (done.created_count, done.updated_count) == (1, 1)
    assert len(calls) == 2
    assert dict(Product.objects.values_list("sku", "stock")) == {"MUG-1": 50, "CUP-1": 3}
    assert (audited_stock("MUG-1"), audited_stock("CUP-1")) == (50, 3)
    assert list(
        InventoryAudit.objects.filter(reason="import", product__sku="MUG-1").values_list("change", "stock_after")
    ) == [(35, 50)]
