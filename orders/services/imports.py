"""Product imports: read an uploaded CSV as a stream and upsert its products chunk by chunk, resumably."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import PurePath

from django.db import OperationalError, connection, transaction
from django.utils import timezone

from orders.errors import ImportFileUnusable
from orders.models import Import, ImportRowError
from orders.product_csv import Columns, ProductCsv, ProductRow, RowError, row_check
from orders.services.products import ProductsReady, products_ready, products_upsert, products_upsert_planned
from workers.enqueue import actor_named, enqueue_on_commit
from workers.readahead import read_ahead

logger = logging.getLogger(__name__)

IMPORT_DATA = actor_named("import_data")

#: Rows checked and saved per transaction: the most a crash can make a retry read again. Three
#: chunks at most are held at once (one written, one waiting, one being read), about 30 MB.
CHUNK_ROWS = 20_000
#: Rows the reading thread checks between giving the interpreter lock away (see ``_chunks``).
ROWS_BETWEEN_PAUSES = 256
#: Row errors kept per import; all of them are counted.
ROW_ERRORS_KEPT = 1_000
#: Times a chunk is written before its run gives up, when an order changed one of its products meanwhile.
CHUNK_ATTEMPTS = 3
SERIALIZATION_FAILURE = "40001"


@dataclass
class Chunk:
    """Rows read since the last commit: the valid ones, the errors of the others, how many in all, and
    where in the file the row after them starts (byte offset and row number)."""

    rows: list[ProductRow] = field(default_factory=list)
    ready: ProductsReady | None = None
    errors: list[RowError] = field(default_factory=list)
    invalid: int = 0
    size: int = 0
    offset: int = 0
    row: int = 0


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
        with _open(product_import) as stream:
            source = ProductCsv(stream)
            if product_import.total_rows is None:
                product_import.total_rows = source.rows_count()
                Import.objects.filter(pk=import_id).update(total_rows=product_import.total_rows)
            columns = source.header()
            if product_import.resume_offset:
                source.seek(offset=product_import.resume_offset, row=product_import.resume_row)
            finished = _import_chunks(product_import, source, columns, chunk_rows or CHUNK_ROWS, should_stop)
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


def import_files_prune(*, older_than: timedelta) -> int:
    """Delete the uploaded files of imports that finished longer than ``older_than`` ago; returns how many.

    The imports stay, with their counts and row errors, and an empty file field. A pending or
    running import keeps its file whatever its age: its job reads it. Each file is deleted by
    the one run whose update emptied its field, so two runs at once never both claim it.
    """
    cutoff = timezone.now() - older_than
    finished = Import.objects.filter(
        status__in=[Import.Status.COMPLETED, Import.Status.FAILED], finished_at__lt=cutoff
    ).exclude(file="")
    pruned = 0
    for product_import in list(finished.only("pk", "file")):
        name = product_import.file.name
        if Import.objects.filter(pk=product_import.pk, file=name).update(file=""):
            product_import.file.storage.delete(name)
            pruned += 1
    logger.info("deleted the files of %s imports finished before %s", pruned, cutoff.isoformat())
    return pruned


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


def _open(product_import: Import):
    try:
        return product_import.file.open("rb")
    except FileNotFoundError:
        raise ImportFileUnusable(f"The file {product_import.file.name} is missing from storage.") from None


def _import_chunks(
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
    known_new = _dry_run_known_new(product_import, source, columns) if product_import.dry_run else set()
    for_copy = None if product_import.dry_run else connection.vendor == "postgresql"
    chunks = _chunks(source, columns, chunk_rows, for_copy=for_copy)
    with closing(read_ahead(chunks, name=f"import-{product_import.pk}")) as ahead:
        for chunk in ahead:
            if should_stop is not None and should_stop():
                raise ImportStopped
            if not _chunk_commit(product_import, chunk, committed=committed, known_new=known_new):
                return False
            committed += chunk.size
    return True


def _dry_run_known_new(product_import: Import, source: ProductCsv, columns: Columns) -> set[str]:
    """The skus a dry run resumed mid-file counted as new before its resume point, so none counts twice."""
    known_new: set[str] = set()
    if not product_import.resume_offset:
        return known_new
    source.seek(offset=0, row=0)
    source.header()
    rows = []
    for values in source.rows():
        if source.offset > product_import.resume_offset:
            break
        checked = row_check(values, columns, source.row)
        if isinstance(checked, ProductRow):
            rows.append(checked)
    products_upsert_planned(rows, known_new=known_new)
    source.seek(offset=product_import.resume_offset, row=product_import.resume_row)
    return known_new


def _chunks(source: ProductCsv, columns: Columns, chunk_rows: int, *, for_copy: bool | None) -> Iterator[Chunk]:
    """The rows from where ``source`` stands, checked, in chunks of ``chunk_rows``; each made ready
    to upsert unless ``for_copy`` is None (a dry run).

    This runs in the reading thread, all Python, while the writing thread mostly waits on the
    database. Each of the writer's round trips ends with it waiting for the interpreter lock,
    which a busy thread gives up only every 5 ms (``sys.getswitchinterval``); a pause every
    ``ROWS_BETWEEN_PAUSES`` rows hands it over at once, and cuts the import's time by a sixth.
    """

    def ended(chunk: Chunk) -> Chunk:
        chunk.offset, chunk.row = source.offset, source.row
        if for_copy is not None:
            chunk.ready = products_ready(chunk.rows, for_copy=for_copy)
        return chunk

    chunk = Chunk()
    for values in source.rows():
        checked = row_check(values, columns, source.row)
        if isinstance(checked, ProductRow):
            chunk.rows.append(checked)
        else:
            chunk.errors.extend(checked)
            chunk.invalid += 1
        chunk.size += 1
        if not chunk.size % ROWS_BETWEEN_PAUSES:
            time.sleep(0)
        if chunk.size == chunk_rows:
            yield ended(chunk)
            chunk = Chunk()
    if chunk.size:
        yield ended(chunk)


def _chunk_commit(product_import: Import, chunk: Chunk, *, committed: int, known_new: set[str]) -> bool:
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
            return _chunk_commit_once(product_import, chunk, committed=committed, known_new=known_new)
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


def _chunk_commit_once(product_import: Import, chunk: Chunk, *, committed: int, known_new: set[str]) -> bool:
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
