"""An import's uploaded file: opened for its job, and deleted once the import is long finished."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import IO

from django.utils import timezone

from orders.errors import ImportFileUnusable
from orders.models import Import

logger = logging.getLogger(__name__)


def import_file_open(product_import: Import) -> IO[bytes]:
    """The import's file, opened to read as bytes; a file gone from storage makes the import unusable."""
    try:
        return product_import.file.open("rb")
    except FileNotFoundError:
        raise ImportFileUnusable(f"The file {product_import.file.name} is missing from storage.") from None


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
