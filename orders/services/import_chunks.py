"""An import's file read in chunks: its rows checked and made ready to write, in a thread of their own."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from orders.models import Import
from orders.product_csv import Columns, ProductCsv, ProductRow, RowError, row_check
from orders.services.products import ProductsReady, products_ready, products_upsert_planned

#: Rows the reading thread checks between giving the interpreter lock away (see ``import_chunks``).
ROWS_BETWEEN_PAUSES = 256


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


def import_chunks(source: ProductCsv, columns: Columns, chunk_rows: int, *, for_copy: bool | None) -> Iterator[Chunk]:
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


def dry_run_known_new(product_import: Import, source: ProductCsv, columns: Columns) -> set[str]:
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
