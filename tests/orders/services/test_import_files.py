"""Uploaded import files: deleted some days after their import finished, and with the import."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.admin.sites import site
from django.utils import timezone
from dramatiq_crontab import scheduler

from orders.models import Import
from orders.services.import_files import import_files_prune
from orders.tasks import prune_import_files
from tests.orders.factories import make_import, products_csv

pytestmark = pytest.mark.django_db


def an_import(status: str, *, finished_days_ago: int | None) -> Import:
    finished_at = None if finished_days_ago is None else timezone.now() - timedelta(days=finished_days_ago)
    product_import = make_import(products_csv("MUG-1,Mug,1.00,1"), status=status, processed_rows=1)
    Import.objects.filter(pk=product_import.pk).update(
        finished_at=finished_at, created_at=timezone.now() - timedelta(days=90)
    )
    product_import.refresh_from_db()
    return product_import


def on_disk(product_import: Import) -> Path:
    return Path(product_import.file.path)


def test_files_of_imports_finished_long_ago_are_deleted_and_the_imports_stay():
    # Given imports on either side of 30 days, and two still to run, uploaded 90 days ago
    completed_old = an_import(Import.Status.COMPLETED, finished_days_ago=31)
    failed_old = an_import(Import.Status.FAILED, finished_days_ago=40)
    completed_recent = an_import(Import.Status.COMPLETED, finished_days_ago=29)
    running = an_import(Import.Status.RUNNING, finished_days_ago=None)
    pending = an_import(Import.Status.PENDING, finished_days_ago=None)
    old_files = [on_disk(completed_old), on_disk(failed_old)]

    # When files older than 30 days are pruned
    pruned = import_files_prune(older_than=timedelta(days=30))

    # Then the two old files are gone, their imports keep their counts, and the rest keep their files
    assert pruned == 2
    assert not any(path.exists() for path in old_files)
    assert set(Import.objects.filter(file="").values_list("pk", "status", "processed_rows")) == {
        (completed_old.pk, Import.Status.COMPLETED, 1),
        (failed_old.pk, Import.Status.FAILED, 1),
    }
    assert all(on_disk(kept).exists() for kept in (completed_recent, running, pending))
    # And a second run finds nothing more to do
    assert import_files_prune(older_than=timedelta(days=30)) == 0


def test_the_nightly_job_keeps_the_configured_number_of_days(perform_jobs, settings, jobs):
    settings.IMPORT_FILE_RETENTION_DAYS = 7
    eight = an_import(Import.Status.COMPLETED, finished_days_ago=8)
    six = an_import(Import.Status.COMPLETED, finished_days_ago=6)

    [entry] = [job for job in scheduler.get_jobs() if job.name == prune_import_files.actor_name]
    entry.func(*entry.args, **entry.kwargs)
    jobs.assert_enqueued(prune_import_files, queue="low", count=1)
    perform_jobs()

    assert list(Import.objects.exclude(file="").values_list("pk", flat=True)) == [six.pk]
    assert not on_disk(eight).exists()


def test_the_admin_says_when_a_file_was_deleted(settings):
    settings.IMPORT_FILE_RETENTION_DAYS = 30
    product_import = an_import(Import.Status.COMPLETED, finished_days_ago=31)
    import_files_prune(older_than=timedelta(days=30))
    product_import.refresh_from_db()

    assert site._registry[Import].file_name(product_import) == "(deleted 30 days after the import finished)"


def test_deleting_an_import_deletes_its_file_once_the_deletion_commits(django_capture_on_commit_callbacks):
    product_import = an_import(Import.Status.COMPLETED, finished_days_ago=1)
    path = on_disk(product_import)

    with django_capture_on_commit_callbacks(execute=True):
        product_import.delete()

    assert not path.exists()
