"""Product imports: a CSV streamed into products chunk by chunk, its errors kept, resumable after a crash."""

from __future__ import annotations

import logging
import tracemalloc
from decimal import Decimal

import pytest

from orders.models import Import, ImportRowError, InventoryAudit, Product
from orders.services import import_chunk_commit
from orders.services.imports import import_fail, import_run
from tests.orders.factories import make_import, make_product, products_csv

pytestmark = pytest.mark.django_db


def products() -> set[tuple]:
    return set(Product.objects.values_list("sku", "name", "price", "stock"))


def counts(product_import: Import) -> dict[str, int]:
    return {
        name: getattr(product_import, name)
        for name in ["total_rows", "processed_rows", "created_count", "updated_count", "invalid_rows", "error_count"]
    }


def row_errors(product_import: Import) -> list[tuple]:
    return list(product_import.row_errors.values_list("row", "column", "message"))


def test_a_good_file_creates_and_updates_products_and_counts_them():
    # Given a product that exists, and a file that changes it and adds two
    make_product(sku="MUG-1", name="Mug", price=Decimal("5.00"), stock=1)
    product_import = make_import(products_csv("MUG-1,Big mug,7.5,4", "CUP-1,Cup,3,10", "PLATE-1,Plate,12.99,0"))

    # When it is imported
    done = import_run(import_id=product_import.pk)

    # Then every row is in, and the counts say which were new
    assert done.status == Import.Status.COMPLETED
    assert counts(done) == {
        "total_rows": 3,
        "processed_rows": 3,
        "created_count": 2,
        "updated_count": 1,
        "invalid_rows": 0,
        "error_count": 0,
    }
    assert products() == {
        ("MUG-1", "Big mug", Decimal("7.50"), 4),
        ("CUP-1", "Cup", Decimal("3.00"), 10),
        ("PLATE-1", "Plate", Decimal("12.99"), 0),
    }
    assert done.progress == 1.0


def test_a_spreadsheet_export_with_bom_crlf_and_quoted_commas_quotes_and_line_breaks_is_read_exactly():
    # Given a file as Excel writes it: a byte-order mark, CRLF, quoted values; columns in another order
    content = (
        "\ufeff Stock ,SKU,Name,Price\r\n"
        '4,MUG-1,"Mug, large ""XL""",7.50\r\n'
        '5,CARD-1,"Card\r\nwith two lines",1.00\r\n'
        "\r\n"
    ).encode()
    product_import = make_import(content)

    # When it is imported
    done = import_run(import_id=product_import.pk)

    # Then the values are the spreadsheet's, and the blank last line is no row
    assert (done.status, done.total_rows, done.created_count) == (Import.Status.COMPLETED, 2, 2)
    assert products() == {
        ("MUG-1", 'Mug, large "XL"', Decimal("7.50"), 4),
        ("CARD-1", "Card\r\nwith two lines", Decimal("1.00"), 5),
    }


@pytest.mark.parametrize(
    ("header", "problems"),
    [
        ("sku,name,price", "missing stock"),
        ("sku,name,price,stock,colour", "unknown colour"),
        ("sku,title,cost,stock", "missing name, price; unknown title, cost"),
        ("sku,name,price,stock,sku", "repeated sku"),
        ("sku,name,price,stock,", 'unknown ""'),
    ],
)
def test_a_wrong_header_fails_the_import_naming_missing_and_unknown_columns(header, problems):
    # Given a file whose header is not right
    make_product(sku="MUG-1", stock=1)
    product_import = make_import(products_csv("MUG-1,Mug,1.00,9", header=header))

    # When it is imported, the run ends without raising: the file is the uploader's to fix
    import_run(import_id=product_import.pk)

    # Then the import failed with a message that says what is wrong, and nothing changed
    product_import.refresh_from_db()
    assert product_import.status == Import.Status.FAILED
    assert product_import.failure_message == (
        f"The header is not right: {problems}. It names the columns sku, name, price, stock, in any order."
    )
    assert product_import.processed_rows == 0
    assert Product.objects.get().stock == 1


def test_invalid_rows_are_skipped_with_their_row_number_column_and_reason():
    # Given a file with one good row among bad ones
    product_import = make_import(
        products_csv(
            "MUG-1,Mug,abc,4",
            "MUG-2,Mug,5.00,-3",
            "MUG-3," + "x" * 201 + ",5.00,1",
            ",Nameless,1.00,1",
            "MUG-4,Mug,1.999,1.5",
            "MUG-5,Mug,1.00",
            "OK-1,Fine,-0.5,1",
            "S" * 65 + ",Long sku,1.00,1",
            "OK-2,Fine,1e20,99999999999",
            "OK-3,Fine,0,0",
        )
    )

    # When it is imported
    done = import_run(import_id=product_import.pk)

    # Then the good row is in, and each bad one is explained
    assert done.status == Import.Status.COMPLETED
    assert products() == {("OK-3", "Fine", Decimal("0.00"), 0)}
    assert row_errors(done) == [
        (2, "price", "'abc' is not a number such as 12.50"),
        (3, "stock", "'-3' is below zero"),
        (4, "name", "is longer than 200 characters (201)"),
        (5, "sku", "is empty"),
        (6, "price", "'1.999' has more than 2 decimal places"),
        (6, "stock", "'1.5' is not a whole number"),
        (7, "", "has 3 values, the header has 4"),
        (8, "price", "'-0.5' is below zero"),
        (9, "sku", "is longer than 64 characters (65)"),
        (10, "price", "'1e20' has more than 10 digits before the decimal point"),
        (10, "stock", "'99999999999' is larger than 2147483647"),
    ]
    assert counts(done) == {
        "total_rows": 10,
        "processed_rows": 10,
        "created_count": 1,
        "updated_count": 0,
        "invalid_rows": 9,
        "error_count": 11,
    }


def test_memory_does_not_grow_with_the_file():
    def peak_memory(rows: int) -> int:
        product_import = make_import(
            products_csv(*(f"SKU-{n:06d},Product {n},{n % 100}.99,{n % 50}" for n in range(rows)))
        )
        tracemalloc.start()
        try:
            done = import_run(import_id=product_import.pk, chunk_rows=500)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert done.processed_rows == rows
        return peak

    # Given two files, one five times the other; When each is imported
    small, large = peak_memory(3_000), peak_memory(15_000)

    # Then the larger one needs no more memory than the smaller to speak of
    assert large < small * 1.5, f"peak {large:,} bytes for 15,000 rows, {small:,} for 3,000"


def test_rows_are_numbered_as_a_spreadsheet_numbers_them():
    # Given a blank row and a value over two lines before a bad row
    product_import = make_import(products_csv("A,One,1,1", "", 'B,"Two\nlines",1,1', "C,Three,x,1"))

    # When it is imported
    done = import_run(import_id=product_import.pk)

    # Then the error names row 5, where a spreadsheet shows it
    assert row_errors(done) == [(5, "price", "'x' is not a number such as 12.50")]
    assert (done.total_rows, done.created_count) == (3, 2)


def test_only_the_first_thousand_errors_are_kept_but_all_are_counted():
    # Given a file of 1,205 bad rows, read in chunks of 500
    product_import = make_import(products_csv(*(f"SKU-{n},Mug,free,1" for n in range(1_205))))

    # When it is imported
    done = import_run(import_id=product_import.pk, chunk_rows=500)

    # Then the first 1,000 errors are kept and all 1,205 counted
    assert (done.error_count, done.invalid_rows, done.processed_rows) == (1_205, 1_205, 1_205)
    assert ImportRowError.objects.count() == 1_000
    assert list(done.row_errors.values_list("row", flat=True)) == list(range(2, 1_002))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "The file is empty."),
        (b"\xef\xbb\xbf\r\n  \r\n", "The file is empty."),
        (bytes(range(256)) * 4, "The file contains NUL bytes (row 1): it is binary or UTF-16, not a UTF-8 CSV."),
        (
            products_csv("MUG-1,Mug,1.00,1").decode().encode("utf-16"),
            "The file contains NUL bytes (row 1): it is binary or UTF-16, not a UTF-8 CSV.",
        ),
        (
            products_csv(*(f"SKU-{n},Mug,1.00,1" for n in range(30)), "CAFE-1,Café,1.00,1").decode().encode("latin-1"),
            "The file is not UTF-8: byte 0xE9 in row 32 cannot be read. Save it as CSV UTF-8 and upload it again.",
        ),
        (
            products_csv(*(f"SKU-{n},Mug,1.00,1" for n in range(30)), 'MUG-1,"Mug,1.00,1'),
            "The file is not valid CSV: row 32: unexpected end of data.",
        ),
        (products_csv(), "The file has a header but no rows."),
    ],
    ids=["empty", "blank", "binary", "utf-16", "latin-1", "unclosed-quote", "header-only"],
)
def test_an_unusable_file_fails_the_import_with_a_message_and_changes_nothing(content, message):
    # Given a product, and a file that cannot be read as a products CSV (the bad part after many chunks)
    make_product(sku="SKU-1", name="Mug", price=Decimal("9.00"), stock=3)
    product_import = make_import(content)

    # When it is imported, the run ends without raising: the file is the uploader's to fix
    import_run(import_id=product_import.pk, chunk_rows=10)

    # Then the import failed with the reason and not one product changed
    product_import.refresh_from_db()
    assert (product_import.status, product_import.failure_message) == (Import.Status.FAILED, message)
    assert (product_import.processed_rows, product_import.error_count) == (0, 0)
    assert products() == {("SKU-1", "Mug", Decimal("9.00"), 3)}


def test_a_file_gone_from_storage_fails_the_import():
    product_import = make_import(products_csv("MUG-1,Mug,1.00,1"))
    product_import.file.storage.delete(product_import.file.name)

    import_run(import_id=product_import.pk)

    product_import.refresh_from_db()
    assert product_import.status == Import.Status.FAILED
    assert product_import.failure_message == f"The file {product_import.file.name} is missing from storage."


def test_a_dry_run_checks_every_row_and_writes_no_product():
    # Given a product, and a file that would change it, add one and has a bad row
    make_product(sku="MUG-1", name="Mug", price=Decimal("5.00"), stock=1)
    product_import = make_import(products_csv("MUG-1,Big mug,7.50,4", "CUP-1,Cup,3,10", "BAD-1,Bad,x,1"), dry_run=True)

    # When it runs
    done = import_run(import_id=product_import.pk)

    # Then it reports what it would create and update, the rows and errors, and the products are as they were
    assert done.status == Import.Status.COMPLETED
    assert counts(done) == {
        "total_rows": 3,
        "processed_rows": 3,
        "created_count": 1,
        "updated_count": 1,
        "invalid_rows": 1,
        "error_count": 1,
    }
    assert row_errors(done) == [(4, "price", "'x' is not a number such as 12.50")]
    assert products() == {("MUG-1", "Mug", Decimal("5.00"), 1)}


def test_a_sku_repeated_in_the_file_takes_its_last_row_and_counts_as_updates():
    # Given a sku three times, twice in one chunk and once in a later one
    product_import = make_import(
        products_csv("MUG-1,First,1.00,1", "MUG-1,Second,2.00,2", "CUP-1,Cup,3.00,3", "MUG-1,Third,4.00,4")
    )

    # When it is imported two rows at a time
    done = import_run(import_id=product_import.pk, chunk_rows=2)

    # Then the last row wins, and the rows count as if applied one after another
    assert products() == {("MUG-1", "Third", Decimal("4.00"), 4), ("CUP-1", "Cup", Decimal("3.00"), 3)}
    assert (done.created_count, done.updated_count, done.processed_rows) == (2, 2, 4)


def test_a_dry_run_counts_a_repeated_sku_as_a_real_run_would_across_chunks_and_a_resume(monkeypatch):
    # Given a file with a new sku in three chunks and an existing one, and a dry run that dies
    # in its third chunk
    make_product(sku="CUP-1", stock=1)
    rows = ["MUG-1,First,1.00,1", "CUP-1,Cup,3.00,3", "MUG-1,Second,2.00,2", "BOWL-1,Bowl,1.00,1", "MUG-1,Third,4.00,4"]
    product_import = make_import(products_csv(*rows), dry_run=True)
    crashes = [RuntimeError("worker killed")]
    real_planned = import_chunk_commit.products_upsert_planned

    def dying_planned(rows, *, known_new):
        if len(known_new) == 2 and crashes:
            raise crashes.pop()
        return real_planned(rows, known_new=known_new)

    monkeypatch.setattr(import_chunk_commit, "products_upsert_planned", dying_planned)
    with pytest.raises(RuntimeError, match="worker killed"):
        import_run(import_id=product_import.pk, chunk_rows=2)

    # When its job runs again
    done = import_run(import_id=product_import.pk, chunk_rows=2)

    # Then the counts are a real run's: MUG-1 and BOWL-1 created once, the rest updates; nothing written
    assert (done.status, done.created_count, done.updated_count, done.processed_rows) == (
        Import.Status.COMPLETED,
        2,
        3,
        5,
    )
    assert set(Product.objects.values_list("sku", flat=True)) == {"CUP-1"}


def test_a_crash_mid_import_resumes_after_the_last_committed_chunk_and_counts_nothing_twice(monkeypatch):
    # Given a file of seven rows (two bad), read two rows at a time, and a worker that dies in
    # the third chunk after its products were written but before the chunk committed
    make_product(sku="SKU-2", name="Old", price=Decimal("1.00"), stock=0)
    rows = [f"SKU-{n},Product {n},{n}.00,{n}" for n in range(1, 8)]
    rows[1] = "SKU-2,Product 2,oops,2"
    rows[5] = "SKU-6,Product 6,6.00,-1"
    product_import = make_import(products_csv(*rows))
    upserted: list[list[str]] = []
    crashes = [RuntimeError("worker killed")]
    real_upsert = import_chunk_commit.products_upsert

    def dying_upsert(chunk, **options):
        result = real_upsert(chunk, **options)
        if len(upserted) == 2 and crashes:
            raise crashes.pop()
        upserted.append([row.sku for row in chunk.latest])
        return result

    monkeypatch.setattr(import_chunk_commit, "products_upsert", dying_upsert)
    with pytest.raises(RuntimeError, match="worker killed"):
        import_run(import_id=product_import.pk, chunk_rows=2)
    product_import.refresh_from_db()
    assert product_import.status == Import.Status.RUNNING
    assert (product_import.processed_rows, product_import.resume_row, product_import.created_count) == (4, 5, 3)
    assert product_import.error_count == 1
    assert not Product.objects.filter(sku="SKU-5").exists()

    # When the job runs again
    done = import_run(import_id=product_import.pk, chunk_rows=2)

    # Then it read on from row 6 and the counts are exact
    assert upserted == [["SKU-1"], ["SKU-3", "SKU-4"], ["SKU-5"], ["SKU-7"]]
    assert done.status == Import.Status.COMPLETED
    assert counts(done) == {
        "total_rows": 7,
        "processed_rows": 7,
        "created_count": 5,
        "updated_count": 0,
        "invalid_rows": 2,
        "error_count": 2,
    }
    assert row_errors(done) == [
        (3, "price", "'oops' is not a number such as 12.50"),
        (7, "stock", "'-1' is below zero"),
    ]
    assert Product.objects.get(sku="SKU-2").name == "Old"
    assert Product.objects.count() == 6
    # and the chunk that died left no audit row: each product has one, its whole stock
    audits = InventoryAudit.objects.filter(reason="import")
    assert sorted(audits.values_list("product__sku", "change", "stock_after")) == [
        ("SKU-1", 1, 1),
        ("SKU-3", 3, 3),
        ("SKU-4", 4, 4),
        ("SKU-5", 5, 5),
        ("SKU-7", 7, 7),
    ]


def test_a_completed_import_run_again_changes_nothing():
    # Given an import that completed, and a product changed by hand since
    product_import = make_import(products_csv("MUG-1,Mug,1.00,1"))
    import_run(import_id=product_import.pk)
    Product.objects.filter(sku="MUG-1").update(stock=7)

    # When its job runs again
    done = import_run(import_id=product_import.pk)

    # Then it returns at once: same counts, the hand change stays
    assert (done.status, done.processed_rows, done.created_count) == (Import.Status.COMPLETED, 1, 1)
    assert Product.objects.get(sku="MUG-1").stock == 7


def test_a_failed_import_is_not_run_again_and_the_run_says_so(caplog):
    caplog.set_level(logging.INFO)
    product_import = make_import(products_csv("MUG-1,Mug,1.00,1"))
    import_fail(import_id=product_import.pk, message="Retries exhausted: OperationalError: gone")

    done = import_run(import_id=product_import.pk)

    assert (done.status, done.failure_message) == (Import.Status.FAILED, "Retries exhausted: OperationalError: gone")
    assert f"import {product_import.pk} is failed already; this run changes nothing" in caplog.messages
    assert not Product.objects.exists()
