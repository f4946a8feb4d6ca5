"""The import_data actor through the middleware (StubBroker): queued after commit, retried, or discarded."""

from __future__ import annotations

import logging

import pytest
from django.core.files.base import ContentFile
from django.db import OperationalError

from orders.models import Import, Product
from orders.services import import_chunk_commit, imports
from orders.services.imports import import_start
from orders.tasks import import_data
from tests.orders.factories import products_csv
from workers.models import DeadLetter

pytestmark = pytest.mark.django_db


def start(content: bytes, django_capture_on_commit_callbacks, **fields) -> Import:
    with django_capture_on_commit_callbacks(execute=True):
        return import_start(product_import=Import(file=ContentFile(content, name="products.csv"), **fields))


def retries_logged(caplog) -> int:
    return len([r for r in caplog.records if r.getMessage().startswith("Retrying message")])


def test_a_started_import_is_queued_on_low_after_commit_and_imports_the_file(
    jobs, perform_jobs, django_capture_on_commit_callbacks
):
    # Given an import started (saved and queued)
    product_import = start(products_csv("MUG-1,Mug,7.50,4", "CUP-1,Cup,3,10"), django_capture_on_commit_callbacks)
    jobs.assert_enqueued(import_data, product_import.pk, queue="low", count=1)

    # When the worker runs it
    assert perform_jobs() == 1

    # Then the products are in
    product_import.refresh_from_db()
    assert (product_import.status, product_import.created_count) == (Import.Status.COMPLETED, 2)
    assert set(Product.objects.values_list("sku", flat=True)) == {"MUG-1", "CUP-1"}


def test_an_unusable_file_fails_the_import_and_the_job_ends_normally(
    perform_jobs, django_capture_on_commit_callbacks, caplog
):
    # Given an import of a latin-1 file
    caplog.set_level(logging.INFO)
    product_import = start(
        "sku,name,price,stock\nMUG-1,Café,1.00,1\n".encode("latin-1"), django_capture_on_commit_callbacks
    )

    # When the worker runs it
    assert perform_jobs() == 1

    # Then the import failed with the reason, once; the file is the uploader's problem, not the
    # platform's: no retry, no dead letter, no error logged
    product_import.refresh_from_db()
    assert product_import.status == Import.Status.FAILED
    assert product_import.failure_message.startswith("The file is not UTF-8: byte 0xE9 in row 2")
    assert retries_logged(caplog) == 0
    assert not DeadLetter.objects.exists()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not Product.objects.exists()


def test_a_job_that_dies_mid_import_is_retried_and_resumes_with_exact_counts(
    perform_jobs, django_capture_on_commit_callbacks, caplog, monkeypatch
):
    # Given 12,000 rows (three chunks), and a database that drops out during the second chunk once
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(imports, "CHUNK_ROWS", 5_000)
    rows = [f"SKU-{n},Product {n},1.00,{n}" for n in range(12_000)]
    product_import = start(products_csv(*rows), django_capture_on_commit_callbacks)
    calls = {"count": 0}
    real_upsert = import_chunk_commit.products_upsert

    def flaky_upsert(chunk, **options):
        calls["count"] += 1
        result = real_upsert(chunk, **options)
        if calls["count"] == 2:
            raise OperationalError("server closed the connection unexpectedly")
        return result

    monkeypatch.setattr(import_chunk_commit, "products_upsert", flaky_upsert)

    # When the worker runs it, and its retry
    perform_jobs()

    # Then one retry finished it, each row counted once
    product_import.refresh_from_db()
    assert retries_logged(caplog) == 1
    assert product_import.status == Import.Status.COMPLETED
    assert (product_import.processed_rows, product_import.created_count, product_import.updated_count) == (
        12_000,
        12_000,
        0,
    )
    assert calls["count"] == 4
    assert Product.objects.count() == 12_000


def test_an_import_whose_retries_run_out_is_failed_with_the_last_error(
    perform_jobs, django_capture_on_commit_callbacks, monkeypatch
):
    # Given a database that keeps failing
    product_import = start(products_csv("MUG-1,Mug,1.00,1"), django_capture_on_commit_callbacks)

    def failing_upsert(chunk, **options):
        raise OperationalError("the database is down")

    monkeypatch.setattr(import_chunk_commit, "products_upsert", failing_upsert)

    # When the worker has tried as often as the actor allows (six attempts), and run the callback
    assert perform_jobs() == 7

    # Then the import is failed with the reason, and the job is a dead letter
    product_import.refresh_from_db()
    assert product_import.status == Import.Status.FAILED
    assert product_import.failure_message == "Retries exhausted: OperationalError: the database is down"
    assert DeadLetter.objects.get(actor_name="import_data").reason == "exhausted"
