"""Product imports run: an uploaded CSV read as a stream, its products upserted chunk by chunk, resumably."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import closing
from pathlib import PurePath

from django.db import connection, transaction
from django.utils import timezone

from orders.errors import ImportFileUnusable
from orders.models import Import
from orders.product_csv import Columns, ProductCsv
from orders.services.import_chunk_commit import import_chunk_commit
from orders.services.import_chunks import dry_run_known_new, import_chunks
from orders.services.import_files import import_file_open
from workers.enqueue import actor_named, enqueue_on_commit
from workers.readahead import read_ahead

logger = logging.getLogger(__name__)

IMPORT_DATA = actor_named("import_data")

#: Rows checked and saved per transaction: the most a crash can make a retry read again. Three
#: chunks at most are held at once (one written, one waiting, one being read), about 30 MB.
CHUNK_ROWS = 20_000


def import_start(*, product_import: Import) -> Import:
    """Save a new import, with its file's name as uploaded, and queue its job after commit."""
    if product_import.file and not product_import.original_name:
        # Storage makes the name safe and unique (spaces and accents go, a suffix is added): keep
        # the one staff know the file by.
        product_import.original_name = PurePath(product_import.file.name).name[:255]
    with transaction.atomic():
        product_import.save()
        enqueue_on_commit(IMPORT_DATA, product_import.pk)
    return product_import


def import_run(
    *, import_id: int, chunk_rows: int | None = None, should_stop: Callable[[], bool] | None = None
) -> Import:
    """Import the file's products, resuming after the last committed chunk; a finished import is left alone.

    The whole file is read once first: an unusable file (empty, binary, not UTF-8, not CSV, a
    wrong header) fails the import with the reason before any product changes. That is the
    uploader's to fix, not the platform's: nothing is raised, so the job ends normally, with no
    retry and no dead letter. Then each chunk of rows is checked and its products, errors,
    counters and resume point are saved in one transaction, so a retry after a crash skips
    what was committed and counts nothing twice. A dry run checks every row and writes no
    product. Rows with errors are skipped; the first ``ROW_ERRORS_KEPT`` errors are kept.

    ``should_stop`` is asked before each chunk: once it says True, the import is cancelled with
    what it committed so far, and :func:`import_resume` carries on from there.
    """
    product_import = _import_begin(import_id)
    if product_import.status != Import.Status.RUNNING:
        # A replayed or duplicate job: say so, rather than end without a word.
        logger.info("import %s is %s already; this run changes nothing", import_id, product_import.status)
        return product_import
    try:
        with import_file_open(product_import) as stream:
            source = ProductCsv(stream)
            if product_import.total_rows is None:
                product_import.total_rows = source.rows_count()
                Import.objects.filter(pk=import_id).update(total_rows=product_import.total_rows)
            columns = source.header()
            if product_import.resume_offset:
                source.seek(offset=product_import.resume_offset, row=product_import.resume_row)
            finished = _chunks_save(product_import, source, columns, chunk_rows or CHUNK_ROWS, should_stop)
    except ImportFileUnusable as error:
        return import_fail(import_id=import_id, message=str(error))
    except ImportStopped:
        return _import_cancel(import_id)
    return _import_finish(import_id) if finished else Import.objects.get(pk=import_id)


def import_resume(*, import_id: int) -> bool:
    """Queue a cancelled import again, to go on after its last committed chunk; False if it is not cancelled.

    An import whose job was cancelled before it started is still pending: it is queued again
    too (a job still queued for it keeps its unique lock, and the second send is dropped).
    """
    with transaction.atomic():
        product_import = Import.objects.select_for_update().get(pk=import_id)
        if product_import.status not in (Import.Status.CANCELLED, Import.Status.PENDING):
            return False
        if product_import.status == Import.Status.CANCELLED:
            product_import.status = Import.Status.RUNNING
            product_import.save(update_fields=["status"])
        enqueue_on_commit(IMPORT_DATA, product_import.pk)
    logger.info("import %s resumed after row %s", import_id, product_import.resume_row)
    return True


def import_fail(*, import_id: int, message: str) -> Import:
    """Fail an import that has not finished, with the reason; what it committed stays."""
    with transaction.atomic():
        product_import = Import.objects.select_for_update().get(pk=import_id)
        if product_import.status in (Import.Status.PENDING, Import.Status.RUNNING):
            product_import.status = Import.Status.FAILED
            product_import.failure_message = message
            product_import.finished_at = timezone.now()
            product_import.save(update_fields=["status", "failure_message", "finished_at"])
            logger.warning("import %s failed after %s rows: %s", import_id, product_import.processed_rows, message)
    return product_import


class ImportStopped(Exception):
    """The import was asked to stop between two chunks."""


def _import_cancel(import_id: int) -> Import:
    with transaction.atomic():
        product_import = Import.objects.select_for_update().get(pk=import_id)
        if product_import.status == Import.Status.RUNNING:
            product_import.status = Import.Status.CANCELLED
            product_import.save(update_fields=["status"])
            logger.info("import %s cancelled after %s rows", import_id, product_import.processed_rows)
    return product_import


def _import_begin(import_id: int) -> Import:
    with transaction.atomic():
        product_import = Import.objects.select_for_update().get(pk=import_id)
        if product_import.status == Import.Status.PENDING:
            product_import.status = Import.Status.RUNNING
            product_import.started_at = timezone.now()
            product_import.save(update_fields=["status", "started_at"])
        elif product_import.status == Import.Status.RUNNING:
            logger.info("import %s was started before; it goes on after row %s", import_id, product_import.resume_row)
    return product_import


def _chunks_save(
    product_import: Import,
    source: ProductCsv,
    columns: Columns,
    chunk_rows: int,
    should_stop: Callable[[], bool] | None = None,
) -> bool:
    """Save the rows after the resume point chunk by chunk; False if another run of the import got ahead.

    Raises ImportStopped before a chunk once ``should_stop`` says so.

    The next chunk is read, checked and made ready to write in a thread while this one is
    written, so that reading the file overlaps waiting for the database.
    """
    committed = product_import.processed_rows
    known_new = dry_run_known_new(product_import, source, columns) if product_import.dry_run else set()
    for_copy = None if product_import.dry_run else connection.vendor == "postgresql"
    chunks = import_chunks(source, columns, chunk_rows, for_copy=for_copy)
    with closing(read_ahead(chunks, name=f"import-{product_import.pk}")) as ahead:
        for chunk in ahead:
            if should_stop is not None and should_stop():
                raise ImportStopped
            if not import_chunk_commit(product_import, chunk, committed=committed, known_new=known_new):
                return False
            committed += chunk.size
    return True


def _import_finish(import_id: int) -> Import:
    with transaction.atomic():
        product_import = Import.objects.select_for_update().get(pk=import_id)
        if product_import.status == Import.Status.RUNNING:
            product_import.status = Import.Status.COMPLETED
            product_import.finished_at = timezone.now()
            product_import.save(update_fields=["status", "finished_at"])
            logger.info(
                "import %s completed: %s rows, %s created, %s updated, %s skipped with %s errors%s",
                import_id,
                product_import.processed_rows,
                product_import.created_count,
                product_import.updated_count,
                product_import.invalid_rows,
                product_import.error_count,
                " (dry run)" if product_import.dry_run else "",
            )
    return product_import
