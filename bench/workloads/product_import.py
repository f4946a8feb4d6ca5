"""A products CSV, and three ways to load it for the imports benchmark.

``python -m bench.workloads.product_import generate PATH ROWS`` writes the file (no Django).
With Django's settings in the environment (PostgreSQL), ``project PATH``, ``copy PATH``,
``copy-upsert PATH``, ``unaudited PATH`` and ``naive PATH N`` empty the products and audit tables
and load the file (or its first N rows) one way; ``project``, ``unaudited`` and ``copy-upsert``
then load it a second time, when every product exists, and ``project`` a third time as a dry
run (reading and checking only), each of these after a VACUUM ANALYZE and a CHECKPOINT.
``unaudited`` is the project's import with its upsert statement stripped of the audit rows, as
imports were before every stock change had its audit. Prints JSON: for each pass, the rows
loaded and the seconds it took; the project's import adds its counts and the process's peak
resident memory.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import random
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

COLOURS = ["red", "blue", "green", "black", "white", "oak", "steel", "glass"]
THINGS = ["mug", "plate", "bowl", "lamp", "chair", "shelf", "vase", "clock"]
COPY_COLUMNS = "sku, name, price, stock"


def generate(path: Path, rows: int, *, seed: int = 2026) -> int:
    """Write ``rows`` products as a spreadsheet would: every tenth name quoted with a comma in it."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write("sku,name,price,stock\n")
        for start in range(0, rows, 10_000):
            lines = []
            for n in range(start, min(start + 10_000, rows)):
                name = f"{rng.choice(COLOURS)} {rng.choice(THINGS)} {n}"
                if n % 10 == 0:
                    name = f'"{name}, large"'
                lines.append(f"SKU-{n:08d},{name},{rng.randrange(99, 99_999) / 100:.2f},{rng.randrange(0, 500)}\n")
            out.write("".join(lines))
    return path.stat().st_size


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("method", choices=["generate", "project", "unaudited", "copy", "copy-upsert", "naive"])
    parser.add_argument("path", type=Path)
    parser.add_argument("rows", type=int, nargs="?", default=0, help="generate: rows to write; naive: rows to load")
    args = parser.parse_args(argv)
    if args.method == "generate":
        print(json.dumps({"rows": args.rows, "bytes": generate(args.path, args.rows)}))
        return

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.db import connection

    with connection.cursor() as cursor:
        # The audits name their products without a foreign key: CASCADE does not reach them.
        cursor.execute("TRUNCATE orders_product, orders_inventoryaudit RESTART IDENTITY CASCADE")
        cursor.execute("CHECKPOINT")
    if args.method == "project":
        passes = {"new": project(args.path), "existing": settled(project, args.path)}
        passes["dry"] = settled(project, args.path, dry_run=True)
    elif args.method == "unaudited":
        with _without_audits():
            passes = {"new": project(args.path), "existing": settled(project, args.path)}
    elif args.method == "copy-upsert":
        passes = {"new": copy_upsert(args.path), "existing": settled(copy_upsert, args.path)}
    elif args.method == "copy":
        passes = {"new": copy(args.path)}
    else:
        passes = {"new": naive(args.path, args.rows)}
    print(json.dumps(passes))


def settled(load, path: Path, **options) -> dict:
    """``load`` run once VACUUM ANALYZE has gone over the tables the pass before filled, and a
    CHECKPOINT has written its pages, so that the autovacuum of one pass's rows (a million audit
    rows, say) and the checkpoint their WAL calls for are not timed in the next pass."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) orders_product, orders_inventoryaudit")
        cursor.execute("CHECKPOINT")
    vacuumed = time.perf_counter() - started
    return {**load(path, **options), "vacuum_seconds_before": vacuumed}


def project(path: Path, *, dry_run: bool = False) -> dict:
    """The project's import: an Import row for the file, then ``import_run``, as the actor runs it."""
    from django.core.files import File

    from orders.models import Import
    from orders.services.imports import CHUNK_ROWS, import_run

    with open(path, "rb") as source:
        product_import = Import.objects.create(file=File(source, name="products.csv"), dry_run=dry_run)
    rss_before = _peak_rss_mb()
    started = time.perf_counter()
    done = import_run(import_id=product_import.pk)
    seconds = time.perf_counter() - started
    return {
        "rows": done.processed_rows,
        "seconds": seconds,
        "status": done.status,
        "created": done.created_count,
        "updated": done.updated_count,
        "errors": done.error_count,
        "chunk_rows": CHUNK_ROWS,
        "peak_rss_mb_before": rss_before,
        "peak_rss_mb": _peak_rss_mb(),
    }


@contextmanager
def _without_audits() -> Iterator[None]:
    """The import's upsert without its audit rows: COPY into the staging table, one INSERT ... ON CONFLICT."""
    from django.db import connection, transaction
    from django.utils import timezone

    from orders.services import products

    def upsert(copy_data: bytes, *, note: str) -> int:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "CREATE TEMPORARY TABLE IF NOT EXISTS product_upsert"
                " (sku text, name text, price numeric(12, 2), stock integer) ON COMMIT DELETE ROWS"
            )
            with cursor.copy("COPY product_upsert (sku, name, price, stock) FROM STDIN (FORMAT csv)") as copy:
                copy.write(copy_data)
            cursor.execute(
                "WITH upserted AS (INSERT INTO orders_product (sku, name, price, stock, updated_at)"
                " SELECT sku, name, price, stock, %s FROM product_upsert"
                " ON CONFLICT (sku) DO UPDATE SET name = EXCLUDED.name, price = EXCLUDED.price,"
                " stock = EXCLUDED.stock, updated_at = EXCLUDED.updated_at"
                " WHERE (orders_product.name, orders_product.price, orders_product.stock)"
                " IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.price, EXCLUDED.stock)"
                " RETURNING (xmax = 0) AS created)"
                " SELECT count(*) FILTER (WHERE created) FROM upserted",
                [timezone.now()],
            )
            (created,) = cursor.fetchone()
            cursor.execute("TRUNCATE product_upsert")
        return created

    audited, products._upsert_postgresql = products._upsert_postgresql, upsert
    try:
        yield
    finally:
        products._upsert_postgresql = audited


def copy(path: Path) -> dict:
    """COPY of the file itself into the (empty) products table; ``updated_at`` from a column default."""
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE orders_product ALTER COLUMN updated_at SET DEFAULT now()")
        started = time.perf_counter()
        with transaction.atomic():
            _copy_file(cursor, f"COPY orders_product ({COPY_COLUMNS}) FROM STDIN WITH (FORMAT csv, HEADER true)", path)
        seconds = time.perf_counter() - started
        cursor.execute("ALTER TABLE orders_product ALTER COLUMN updated_at DROP DEFAULT")
        cursor.execute("SELECT count(*) FROM orders_product")
        (rows,) = cursor.fetchone()
    return {"rows": rows, "seconds": seconds}


def copy_upsert(path: Path) -> dict:
    """COPY into a staging table, then one INSERT ... ON CONFLICT DO UPDATE: the import's effect in SQL."""
    from django.db import connection, transaction

    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE products_staging (sku text, name text, price numeric(12, 2), stock integer) "
            "ON COMMIT DROP"
        )
        _copy_file(cursor, f"COPY products_staging ({COPY_COLUMNS}) FROM STDIN WITH (FORMAT csv, HEADER true)", path)
        cursor.execute(
            f"INSERT INTO orders_product ({COPY_COLUMNS}, updated_at) "
            f"SELECT {COPY_COLUMNS}, now() FROM products_staging "
            "ON CONFLICT (sku) DO UPDATE SET name = EXCLUDED.name, price = EXCLUDED.price, "
            "stock = EXCLUDED.stock, updated_at = EXCLUDED.updated_at"
        )
        rows = cursor.rowcount
    return {"rows": rows, "seconds": time.perf_counter() - started}


def naive(path: Path, rows: int) -> dict:
    """``update_or_create`` per row, as a first attempt would do it, for the first ``rows`` rows."""
    from orders.models import Product

    with open(path, encoding="utf-8", newline="") as source:
        sample = list(itertools.islice(csv.DictReader(source), rows))
    started = time.perf_counter()
    for row in sample:
        Product.objects.update_or_create(
            sku=row["sku"], defaults={"name": row["name"], "price": Decimal(row["price"]), "stock": int(row["stock"])}
        )
    return {"rows": len(sample), "seconds": time.perf_counter() - started}


def _copy_file(cursor, statement: str, path: Path) -> None:
    with cursor.cursor.copy(statement) as copy, open(path, "rb") as source:
        while block := source.read(1024 * 1024):
            copy.write(block)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
