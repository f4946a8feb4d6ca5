"""Products in bulk: create or update many by sku in one statement (a COPY first on PostgreSQL), with stock audits."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from orders.models import InventoryAudit, Product
from orders.product_csv import ProductRow

FIELDS_UPDATED = ["name", "price", "stock", "updated_at"]
LOOKUP_BATCH = 900


@dataclass(slots=True)
class ProductsReady:
    """Rows made ready to upsert: how many were given, the last row of each sku, and for PostgreSQL
    those rows as COPY data.

    Made without the database (``products_ready``), so that a thread can make the next lot
    while the last one is written.
    """

    given: int
    latest: list[ProductRow]
    copy_data: bytes | None = None


def products_ready(rows: Sequence[ProductRow], *, for_copy: bool) -> ProductsReady:
    """The rows ready for ``products_upsert``; ``for_copy`` when the database is PostgreSQL."""
    latest = list({row.sku: row for row in rows}.values())
    return ProductsReady(len(rows), latest, _copy_data(latest) if for_copy else None)


def _copy_data(rows: list[ProductRow]) -> bytes:
    """The rows as the CSV that COPY reads; every value quoted, so that no character of a name ends a line."""
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(
        (row.sku, row.name, row.price, row.stock) for row in rows
    )
    return out.getvalue().encode()


def products_upsert(rows: Sequence[ProductRow] | ProductsReady, *, note: str = "") -> tuple[int, int]:
    """Create or update products by sku; returns how many rows created a product and how many updated one.

    Runs inside the caller's transaction. The rows count as if applied one after another: when
    a sku comes more than once the last row wins, and only the first row of a new sku counts as
    created. One statement writes them all (INSERT ... ON CONFLICT DO UPDATE on SQLite and
    PostgreSQL alike). Each product whose stock the rows change (a new one: from zero) gets an
    "import" audit row with ``note``, written in bulk in the same transaction, so that stock
    always equals the sum of its audits. The change is measured from the stock the transaction
    read: the caller runs at REPEATABLE READ on PostgreSQL (SQLite writes one at a time), so
    that a product someone else changed since fails the transaction instead.
    """
    postgresql = connection.vendor == "postgresql"
    ready = rows if isinstance(rows, ProductsReady) else products_ready(rows, for_copy=postgresql)
    if not ready.latest:
        return 0, 0
    if postgresql:
        copy_data = ready.copy_data if ready.copy_data is not None else _copy_data(ready.latest)
        created = _upsert_postgresql(copy_data, note=note[:200])
        return created, ready.given - created
    before = _stock_before([row.sku for row in ready.latest])
    now = timezone.now()
    products = [
        Product(sku=row.sku, name=row.name, price=row.price, stock=row.stock, updated_at=now) for row in ready.latest
    ]
    Product.objects.bulk_create(products, update_conflicts=True, unique_fields=["sku"], update_fields=FIELDS_UPDATED)
    audits = []
    for product in products:
        product_id, stock = before.get(product.sku, (product.pk, 0))
        if product.stock != stock:
            audits.append(
                InventoryAudit(
                    product_id=product_id,
                    change=product.stock - stock,
                    stock_after=product.stock,
                    reason=InventoryAudit.Reason.IMPORT,
                    note=note[:200],
                )
            )
    InventoryAudit.objects.bulk_create(audits)
    created = len(ready.latest) - len(before)
    return created, ready.given - created


def _stock_before(skus: list[str]) -> dict[str, tuple[int, int]]:
    """The id and stock of each of the products that exist, by sku."""
    found: dict[str, tuple[int, int]] = {}
    # A few hundred skus a query: SQLite limits the parameters of one statement.
    for start in range(0, len(skus), LOOKUP_BATCH):
        batch = Product.objects.filter(sku__in=skus[start : start + LOOKUP_BATCH])
        found.update((sku, (pk, stock)) for sku, pk, stock in batch.values_list("sku", "pk", "stock"))
    return found


def products_upsert_planned(rows: Sequence[ProductRow], *, known_new: set[str]) -> tuple[int, int]:
    """What ``products_upsert`` would return for the rows, writing nothing (a dry run's counts).

    ``known_new`` holds the skus that earlier lots of the same run would have created; they
    count as updated here, as they would be, and this lot's new skus are added to it.
    """
    latest = {row.sku for row in rows} - known_new
    new = latest - _stock_before(list(latest)).keys()
    known_new |= new
    return len(new), len(rows) - len(new)


def _upsert_postgresql(copy_data: bytes, *, note: str) -> int:
    """COPY the rows into a temporary table, then upsert them all in one INSERT; returns how many were new.

    ``bulk_create`` builds one parameter per value and PostgreSQL parses them all, about 25 us a
    row; COPY streams the rows as CSV made beforehand, in one write, and the upsert reads them
    from the table, several times faster. A product the row would leave as it was (same name,
    price and stock) is not written again, and keeps its ``updated_at``: a file imported twice
    costs the second time a lookup a row, not a new version of each row and its index entries;
    it is still counted as updated. ``xmax = 0`` is true of the rows the INSERT created, not of
    those it updated. The same statement writes the audit rows: a new product's stock
    changed from zero, and an updated one's from the stock it had in the statement's snapshot,
    which still holds the row as it was before the upsert (one probe of the primary key per
    updated product, none per new one). That is the stock it replaces unless someone else
    changed the product meanwhile: the caller runs at REPEATABLE READ on PostgreSQL, where such a
    change fails the transaction instead.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        # The planner's estimate of the statement crosses jit_above_cost, and compiling it costs
        # more than it saves on a chunk: about 9 ms of every 20,000 rows.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS product_upsert"
            " (sku text, name text, price numeric(12, 2), stock integer) ON COMMIT DELETE ROWS"
        )
        with cursor.copy("COPY product_upsert (sku, name, price, stock) FROM STDIN (FORMAT csv)") as copy:
            copy.write(copy_data)
        now = timezone.now()
        cursor.execute(
            "WITH upserted AS ("
            " INSERT INTO orders_product (sku, name, price, stock, updated_at)"
            " SELECT sku, name, price, stock, %s FROM product_upsert"
            " ON CONFLICT (sku) DO UPDATE SET name = EXCLUDED.name, price = EXCLUDED.price,"
            " stock = EXCLUDED.stock, updated_at = EXCLUDED.updated_at"
            " WHERE (orders_product.name, orders_product.price, orders_product.stock)"
            " IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.price, EXCLUDED.stock)"
            " RETURNING id, stock, (xmax = 0) AS created"
            "), audited AS ("
            " INSERT INTO orders_inventoryaudit (product_id, change, stock_after, reason, note, processed_at)"
            " SELECT id, stock - before, stock, %s, %s, %s FROM ("
            # OFFSET 0 keeps the subquery whole, so that the lookup runs once a row, not once for
            # the WHERE and again for the change.
            " SELECT id, stock, CASE WHEN created THEN 0"
            " ELSE (SELECT p.stock FROM orders_product p WHERE p.id = upserted.id) END AS before"
            " FROM upserted OFFSET 0) changed WHERE stock <> before"
            ") SELECT count(*) FILTER (WHERE created) FROM upserted",
            [now, InventoryAudit.Reason.IMPORT.value, note, now],
        )
        (created,) = cursor.fetchone()
        cursor.execute("TRUNCATE product_upsert")
    return created
