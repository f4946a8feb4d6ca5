"""Products in bulk: create or update many by sku in one statement (after a COPY on PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from orders.models import Product
from orders.product_csv import ProductRow

FIELDS_UPDATED = ["name", "price", "stock", "updated_at"]


def products_upsert(rows: Sequence[ProductRow]) -> tuple[int, int]:
    """Create or update products by sku; returns how many rows created a product and how many updated one.

    Runs inside the caller's transaction. The rows count as if applied one after another: when
    a sku comes more than once the last row wins, and only the first row of a new sku counts as
    created. One statement writes them all (INSERT ... ON CONFLICT DO UPDATE on SQLite and
    PostgreSQL alike). Which products were new is told by the ids the statement returns: a
    product that existed has an id no higher than the highest before it, a new one is given a
    higher one. That costs one indexed MAX instead of a query over every sku of the chunk.
    """
    latest = {row.sku: row for row in rows}
    if not latest:
        return 0, 0
    if connection.vendor == "postgresql":
        created = _upsert_postgresql(latest.values())
        return created, len(rows) - created
    returns_ids = connection.features.can_return_rows_from_bulk_insert
    if returns_ids:
        highest = Product.objects.aggregate(highest=Max("pk"))["highest"] or 0
    else:
        existing = Product.objects.filter(sku__in=list(latest)).count()
    now = timezone.now()
    products = [
        Product(sku=sku, name=row.name, price=row.price, stock=row.stock, updated_at=now) for sku, row in latest.items()
    ]
    Product.objects.bulk_create(products, update_conflicts=True, unique_fields=["sku"], update_fields=FIELDS_UPDATED)
    created = sum(product.pk > highest for product in products) if returns_ids else len(latest) - existing
    return created, len(rows) - created


def _upsert_postgresql(rows) -> int:
    """COPY the rows into a temporary table, then upsert them all in one INSERT; returns how many were new.

    ``bulk_create`` builds one parameter per value and PostgreSQL parses them all, about 25 us a
    row; COPY streams the rows in its own format and the upsert reads them from the table,
    several times faster. ``xmax = 0`` is true of the rows the INSERT created, not of those it
    updated.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS product_upsert"
            " (sku text, name text, price numeric(12, 2), stock integer) ON COMMIT DELETE ROWS"
        )
        with cursor.copy("COPY product_upsert (sku, name, price, stock) FROM STDIN") as copy:
            for row in rows:
                copy.write_row((row.sku, row.name, row.price, row.stock))
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
