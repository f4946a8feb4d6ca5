"""Products in bulk: create or update many by sku in one statement (after a COPY on PostgreSQL)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from orders.models import Product
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


def products_upsert(rows: Sequence[ProductRow] | ProductsReady) -> tuple[int, int]:
    """Create or update products by sku; returns how many rows created a product and how many updated one.

    Runs inside the caller's transaction. The rows count as if applied one after another: when
    a sku comes more than once the last row wins, and only the first row of a new sku counts as
    created. One statement writes them all (INSERT ... ON CONFLICT DO UPDATE on SQLite and
    PostgreSQL alike). Which products were new is told by the ids the statement returns: a
    product that existed has an id no higher than the highest before it, a new one is given a
    higher one. That costs one indexed MAX instead of a query over every sku of the chunk.
    """
    postgresql = connection.vendor == "postgresql"
    ready = rows if isinstance(rows, ProductsReady) else products_ready(rows, for_copy=postgresql)
    if not ready.latest:
        return 0, 0
    if postgresql:
        created = _upsert_postgresql(ready.copy_data if ready.copy_data is not None else _copy_data(ready.latest))
        return created, ready.given - created
    returns_ids = connection.features.can_return_rows_from_bulk_insert
    if returns_ids:
        highest = Product.objects.aggregate(highest=Max("pk"))["highest"] or 0
    else:
        existing = Product.objects.filter(sku__in=[row.sku for row in ready.latest]).count()
    now = timezone.now()
    products = [
        Product(sku=row.sku, name=row.name, price=row.price, stock=row.stock, updated_at=now) for row in ready.latest
    ]
    Product.objects.bulk_create(products, update_conflicts=True, unique_fields=["sku"], update_fields=FIELDS_UPDATED)
    created = sum(product.pk > highest for product in products) if returns_ids else len(ready.latest) - existing
    return created, ready.given - created


def products_upsert_planned(rows: Sequence[ProductRow], *, known_new: set[str]) -> tuple[int, int]:
    """What ``products_upsert`` would return for the rows, writing nothing (a dry run's counts).

    ``known_new`` holds the skus that earlier lots of the same run would have created; they
    count as updated here, as they would be, and this lot's new skus are added to it.
    """
    latest = {row.sku for row in rows} - known_new
    existing: set[str] = set()
    unknown = list(latest)
    # A few hundred skus a query: SQLite limits the parameters of one statement.
    for start in range(0, len(unknown), LOOKUP_BATCH):
        batch = unknown[start : start + LOOKUP_BATCH]
        existing.update(Product.objects.filter(sku__in=batch).values_list("sku", flat=True))
    new = latest - existing
    known_new |= new
    return len(new), len(rows) - len(new)


def _upsert_postgresql(copy_data: bytes) -> int:
    """COPY the rows into a temporary table, then upsert them all in one INSERT; returns how many were new.

    ``bulk_create`` builds one parameter per value and PostgreSQL parses them all, about 25 us a
    row; COPY streams the rows as CSV made beforehand, in one write, and the upsert reads them
    from the table, several times faster. ``xmax = 0`` is true of the rows the INSERT created,
    not of those it updated.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS product_upsert"
            " (sku text, name text, price numeric(12, 2), stock integer) ON COMMIT DELETE ROWS"
        )
        with cursor.copy("COPY product_upsert (sku, name, price, stock) FROM STDIN (FORMAT csv)") as copy:
            copy.write(copy_data)
        cursor.execute(
            "WITH upserted AS ("
            " INSERT INTO orders_product (sku, name, price, stock, updated_at)"
            " SELECT sku, name, price, stock, %s FROM product_upsert"
            " ON CONFLICT (sku) DO UPDATE SET name = EXCLUDED.name, price = EXCLUDED.price,"
            " stock = EXCLUDED.stock, updated_at = EXCLUDED.updated_at"
            " RETURNING (xmax = 0) AS created"
            ") SELECT count(*) FILTER (WHERE created) FROM upserted",
            [timezone.now()],
        )
        (created,) = cursor.fetchone()
        cursor.execute("TRUNCATE product_upsert")
    return created
