"""Two runs of one import at once (a redelivered job beside the first): each row still counts once."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from orders.models import Import, Product
from orders.services.imports import import_run
from tests.orders.factories import make_import, products_csv

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_runs_of_one_import_at_once_count_every_row_once():
    # Given an import of 2,000 rows
    product_import = make_import(products_csv(*(f"SKU-{n:05d},Product {n},1.00,{n % 9}" for n in range(2_000))))
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def run() -> None:
        try:
            start.wait()
            import_run(import_id=product_import.pk, chunk_rows=100)
        except BaseException as error:
            failures.append(error)
        finally:
            connection.close()

    # When two workers run it at the same moment
    workers = [threading.Thread(target=run) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    # Then one of them imported each chunk, and the counts are exact
    assert failures == []
    product_import.refresh_from_db()
    assert product_import.status == Import.Status.COMPLETED
    assert (product_import.processed_rows, product_import.created_count, product_import.updated_count) == (
        2_000,
        2_000,
        0,
    )
    assert Product.objects.count() == 2_000
