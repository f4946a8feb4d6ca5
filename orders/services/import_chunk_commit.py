"""One chunk of an import written: its products, row errors, counters and resume point in one transaction."""

from __future__ import annotations

import logging

from django.db import OperationalError, connection, transaction

from orders.models import Import, ImportRowError
from orders.services.import_chunks import Chunk
from orders.services.products import products_upsert, products_upsert_planned

logger = logging.getLogger(__name__)

#: Row errors kept per import; all of them are counted.
ROW_ERRORS_KEPT = 1_000
#: Times a chunk is written before its run gives up, when an order changed one of its products meanwhile.
CHUNK_ATTEMPTS = 3
SERIALIZATION_FAILURE = "40001"


def import_chunk_commit(product_import: Import, chunk: Chunk, *, committed: int, known_new: set[str]) -> bool:
    """Save a chunk's products, errors, counters and resume point together, if no other run got ahead.

    On PostgreSQL the chunk is written at REPEATABLE READ, so that its audit rows' changes, read
    from the transaction's snapshot, are exact: a product changed by anyone else since then
    fails the transaction, and the chunk is written again from the start. A dry run writes no
    product but counts what it would create and update (``known_new``: the skus it would have
    created so far).
    """
    attempt = 1
    while True:
        try:
            return _commit_once(product_import, chunk, committed=committed, known_new=known_new)
        except OperationalError as error:
            if getattr(error.__cause__, "sqlstate", None) != SERIALIZATION_FAILURE:
                raise
            # Either another run of the import committed a chunk (it holds the import's row, and
            # this run stops as it would have on finding it), or an order changed a product.
            now = Import.objects.filter(pk=product_import.pk).values_list("status", "processed_rows").first()
            if now != (Import.Status.RUNNING, committed):
                logger.warning("import %s: another run got ahead (%s); this run stops", product_import.pk, now)
                return False
            if attempt == CHUNK_ATTEMPTS:
                raise
            attempt += 1
            logger.info(
                "import %s: a product changed while rows after %s were written; again", product_import.pk, committed
            )


def _commit_once(product_import: Import, chunk: Chunk, *, committed: int, known_new: set[str]) -> bool:
    repeatable = not product_import.dry_run and connection.vendor == "postgresql" and not connection.in_atomic_block
    with transaction.atomic():
        if repeatable:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        locked = Import.objects.select_for_update().get(pk=product_import.pk)
        if locked.status != Import.Status.RUNNING or locked.processed_rows != committed:
            logger.warning(
                "import %s: expected %s rows done, found %s (%s); this run stops",
                locked.pk,
                committed,
                locked.processed_rows,
                locked.status,
            )
            return False
        if locked.dry_run:
            created, updated = products_upsert_planned(chunk.rows, known_new=known_new)
        else:
            created, updated = products_upsert(chunk.ready, note=f"import #{locked.pk}")
        room = max(0, ROW_ERRORS_KEPT - locked.error_count)
        ImportRowError.objects.bulk_create(
            ImportRowError(product_import=locked, row=error.row, column=error.column, message=error.message)
            for error in chunk.errors[:room]
        )
        locked.processed_rows += chunk.size
        locked.created_count += created
        locked.updated_count += updated
        locked.invalid_rows += chunk.invalid
        locked.error_count += len(chunk.errors)
        locked.resume_offset = chunk.offset
        locked.resume_row = chunk.row
        locked.save(
            update_fields=[
                "processed_rows",
                "created_count",
                "updated_count",
                "invalid_rows",
                "error_count",
                "resume_offset",
                "resume_row",
            ]
        )
    return True
