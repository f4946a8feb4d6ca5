"""The products CSV read alone: its header, its rows and where they start, and each row's values checked."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest

from orders.errors import ImportFileUnusable
from orders.product_csv import Columns, ProductCsv, ProductRow, RowError, columns_check, row_check, sample_csv

COLUMNS = Columns(sku=0, name=1, price=2, stock=3, width=4)


def read(data: bytes) -> ProductCsv:
    return ProductCsv(io.BytesIO(data))


def test_the_header_names_its_columns_in_any_order_and_case_after_a_byte_order_mark():
    source = read("\ufeffStock, PRICE ,name,sku\r\nMUG-1,Mug,7.50,40\r\n".encode())

    assert source.header() == Columns(sku=3, name=2, price=1, stock=0, width=4)


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        (["sku", "name", "price"], "missing stock"),
        (["sku", "name", "price", "stock", "colour"], "unknown colour"),
        (["sku", "name", "price", "stock", "SKU"], "repeated sku"),
        (["sku", "name", "", "stock"], 'missing price; unknown ""'),
    ],
)
def test_a_header_that_is_not_right_is_refused_with_what_is_wrong(header, problem):
    with pytest.raises(ImportFileUnusable, match=f"The header is not right: {problem}\\."):
        columns_check(header)


def test_quoted_values_keep_commas_quotes_and_line_breaks_a_row_each_and_blank_rows_count_but_are_skipped():
    source = read(b'sku,name,price,stock\n\nA-1,"Mug, ""large""\nblue",9.00,2\n,,,\nA-2,Lamp,1,1\n')
    source.header()

    rows = [(source.row, values) for values in source.rows()]

    assert rows == [(3, ["A-1", 'Mug, "large"\nblue', "9.00", "2"]), (5, ["A-2", "Lamp", "1", "1"])]


def test_reading_goes_on_from_a_rows_offset_with_its_number():
    source = read(b"sku,name,price,stock\nA-1,Mug,1,1\nA-2,Lamp,2,2\nA-3,Card,3,3\n")
    source.header()
    rows = source.rows()
    next(rows)
    offset, row = source.offset, source.row

    again = read(source.stream.getvalue())
    again.seek(offset=offset, row=row)

    assert [(again.row, values[0]) for values in again.rows()] == [(3, "A-2"), (4, "A-3")]


def test_the_rows_are_counted_after_the_header():
    assert read(sample_csv()).rows_count() == 4


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "The file is empty."),
        (b"sku,name,price,stock\r\n", "The file has a header but no rows."),
        (b"sku,name,price,stock\nA\x00,B,1,1\n", "contains NUL bytes \\(row 2\\)"),
        (b"sku,name,price,stock\nA,Caf\xe9,1,1\n", "not UTF-8: byte 0xE9 in row 2"),
        (b'sku,name,price,stock\nA,"open,1,1\n', "not valid CSV"),
        (b"sku,name,price,stock\n" + b"x" * (1024 * 1024 + 10), "longer than 1 MB"),
    ],
    ids=["empty", "header only", "binary", "not utf-8", "unclosed quote", "overlong line"],
)
def test_a_file_that_is_not_a_products_csv_is_refused_with_the_reason(data, reason):
    with pytest.raises(ImportFileUnusable, match=reason):
        read(data).rows_count()


def test_a_good_row_is_a_product_with_its_price_to_the_cent():
    assert row_check([" MUG-1 ", " Mug ", "7.5", "40"], COLUMNS, 2) == ProductRow("MUG-1", "Mug", Decimal("7.50"), 40)


@pytest.mark.parametrize(
    ("values", "errors"),
    [
        (["A", "Mug", "1"], [("", "has 3 values, the header has 4")]),
        (["", "", "", ""], [("sku", "is empty"), ("name", "is empty"), ("price", "is empty"), ("stock", "is empty")]),
        (["A", "Mug", "12,50", "1"], [("price", "'12,50' is not a number such as 12.50")]),
        (["A", "Mug", "NaN", "1"], [("price", "'NaN' is not a number such as 12.50")]),
        (["A", "Mug", "-1", "1"], [("price", "'-1' is below zero")]),
        (["A", "Mug", "1.005", "1"], [("price", "'1.005' has more than 2 decimal places")]),
        (["A", "Mug", "1" * 11, "1"], [("price", f"'{'1' * 11}' has more than 10 digits before the decimal point")]),
        (["A", "Mug", "1", "-3"], [("stock", "'-3' is below zero")]),
        (["A", "Mug", "1", "2.5"], [("stock", "'2.5' is not a whole number")]),
        (["A", "Mug", "1", str(2**31)], [("stock", f"'{2**31}' is larger than {2**31 - 1}")]),
    ],
    ids=["width", "empty", "comma", "nan", "negative price", "cents", "too large", "negative stock", "fraction", "big"],
)
def test_each_error_of_a_row_is_named_by_its_column(values, errors):
    assert row_check(values, COLUMNS, 7) == [RowError(7, column, message) for column, message in errors]
