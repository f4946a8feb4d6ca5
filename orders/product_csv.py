"""The products CSV: its rows read from a stream one at a time, its header and each row's values checked.

The format: UTF-8 with or without a byte-order mark, comma-separated, quoted as spreadsheets
quote (values may hold commas, quotes and line breaks), LF or CRLF line ends, and a header
naming the columns sku, name, price and stock in any order. Rows are numbered as a
spreadsheet numbers them: the header is row 1, blank rows count but are skipped.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import BinaryIO

from orders.errors import ImportFileUnusable
from orders.models import Product

COLUMNS = ("sku", "name", "price", "stock")
#: No row of a products CSV comes near this; a longer line means the file is something else.
MAX_LINE_BYTES = 1024 * 1024
SKU_MAX_LENGTH = Product._meta.get_field("sku").max_length
NAME_MAX_LENGTH = Product._meta.get_field("name").max_length
PRICE_PLACES = Product._meta.get_field("price").decimal_places
PRICE_WHOLE_DIGITS = Product._meta.get_field("price").max_digits - PRICE_PLACES
PRICE_STEP = Decimal(1).scaleb(-PRICE_PLACES)
#: The largest value of an integer column on every supported database.
STOCK_MAX = 2**31 - 1


@dataclass(frozen=True, slots=True)
class ProductRow:
    sku: str
    name: str
    price: Decimal
    stock: int


@dataclass(frozen=True, slots=True)
class RowError:
    row: int
    column: str
    message: str


@dataclass(frozen=True, slots=True)
class Columns:
    """Where each column sits in a row, and how many values a row has."""

    sku: int
    name: int
    price: int
    stock: int
    width: int


class ProductCsv:
    """A products CSV read from a binary stream, knowing the byte offset and row number it got to.

    Lines are read and decoded one at a time and the csv module joins those of a quoted value
    that spans lines, so memory stays flat whatever the size of the file. The csv reader never
    reads ahead: once it returns a row, ``offset`` is where the next row starts, a point to
    ``seek`` back to later.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.offset = 0
        self.row = 0

    def seek(self, *, offset: int, row: int) -> None:
        """Go to ``offset`` bytes, where the row after number ``row`` starts."""
        self.stream.seek(offset)
        self.offset, self.row = offset, row

    def header(self) -> Columns:
        """Read the header from the start of the file; raise ImportFileUnusable if it is not usable."""
        self.seek(offset=0, row=0)
        names = next(self.rows(), None)
        if names is None:
            raise ImportFileUnusable("The file is empty.")
        return columns_check(names)

    def rows(self) -> Iterator[list[str]]:
        """The rows from here on as lists of values, blank rows skipped; ``row`` is the one just given."""
        reader = csv.reader(self._lines(), strict=True)
        try:
            for values in reader:
                self.row += 1
                if "".join(values).strip():
                    yield values
        except csv.Error as error:
            raise ImportFileUnusable(f"The file is not valid CSV: row {self.row + 1}: {error}.") from None

    def rows_count(self) -> int:
        """Read the whole file once: check that it is usable and count its rows after the header."""
        self.header()
        count = sum(1 for _ in self.rows())
        if not count:
            raise ImportFileUnusable("The file has a header but no rows.")
        return count

    def _lines(self) -> Iterator[str]:
        readline = self.stream.readline
        while raw := readline(MAX_LINE_BYTES):
            if len(raw) == MAX_LINE_BYTES and not raw.endswith(b"\n"):
                raise ImportFileUnusable(f"Row {self.row + 1} has a line longer than 1 MB: this is not a products CSV.")
            if b"\x00" in raw:
                raise ImportFileUnusable(
                    f"The file contains NUL bytes (row {self.row + 1}): it is binary or UTF-16, not a UTF-8 CSV."
                )
            try:
                line = raw.decode("utf-8-sig" if self.offset == 0 else "utf-8")
            except UnicodeDecodeError as error:
                raise ImportFileUnusable(
                    f"The file is not UTF-8: byte 0x{raw[error.start]:02X} in row {self.row + 1} cannot be read. "
                    "Save it as CSV UTF-8 and upload it again."
                ) from None
            self.offset += len(raw)
            yield line


def columns_check(names: list[str]) -> Columns:
    """Where the columns are, from the header's names; raise ImportFileUnusable naming what is wrong."""
    found = [name.strip().lower() for name in names]
    missing = [column for column in COLUMNS if column not in found]
    unknown = [name or '""' for name in found if name not in COLUMNS]
    repeated = [column for column in COLUMNS if found.count(column) > 1]
    problems = [
        f"{label} {', '.join(items)}"
        for label, items in (("missing", missing), ("unknown", unknown), ("repeated", repeated))
        if items
    ]
    if problems:
        raise ImportFileUnusable(
            f"The header is not right: {'; '.join(problems)}. It names the columns {', '.join(COLUMNS)}, in any order."
        )
    return Columns(*(found.index(column) for column in COLUMNS), width=len(found))


def row_check(values: list[str], columns: Columns, row: int) -> ProductRow | list[RowError]:
    """The product a row describes, or every error in it."""
    if len(values) != columns.width:
        return [RowError(row, "", f"has {len(values)} values, the header has {columns.width}")]
    sku = values[columns.sku].strip()
    name = values[columns.name].strip()
    price, price_error = _price(values[columns.price].strip())
    stock, stock_error = _stock(values[columns.stock].strip())
    errors = []
    if not sku:
        errors.append(RowError(row, "sku", "is empty"))
    elif len(sku) > SKU_MAX_LENGTH:
        errors.append(RowError(row, "sku", f"is longer than {SKU_MAX_LENGTH} characters ({len(sku)})"))
    if not name:
        errors.append(RowError(row, "name", "is empty"))
    elif len(name) > NAME_MAX_LENGTH:
        errors.append(RowError(row, "name", f"is longer than {NAME_MAX_LENGTH} characters ({len(name)})"))
    if price_error:
        errors.append(RowError(row, "price", price_error))
    if stock_error:
        errors.append(RowError(row, "stock", stock_error))
    return errors or ProductRow(sku, name, price, stock)


def _price(text: str) -> tuple[Decimal | None, str]:
    if not text:
        return None, "is empty"
    try:
        price = Decimal(text)
    except InvalidOperation:
        return None, f"{_shown(text)} is not a number such as 12.50"
    if not price.is_finite():
        return None, f"{_shown(text)} is not a number such as 12.50"
    if price < 0:
        return None, f"{_shown(text)} is below zero"
    if price.adjusted() >= PRICE_WHOLE_DIGITS:
        return None, f"{_shown(text)} has more than {PRICE_WHOLE_DIGITS} digits before the decimal point"
    rounded = price.quantize(PRICE_STEP)
    if rounded != price:
        return None, f"{_shown(text)} has more than {PRICE_PLACES} decimal places"
    return rounded, ""


def _stock(text: str) -> tuple[int | None, str]:
    if text.isascii() and text.isdigit():
        stock = int(text)
        return (stock, "") if stock <= STOCK_MAX else (None, f"{_shown(text)} is larger than {STOCK_MAX}")
    if not text:
        return None, "is empty"
    if text[0] == "-" and text[1:].isascii() and text[1:].isdigit():
        return None, f"{_shown(text)} is below zero"
    return None, f"{_shown(text)} is not a whole number"


def _shown(value: str) -> str:
    """A value quoted for a message, cut short so that a message stays short."""
    return repr(value if len(value) <= 40 else value[:40] + "...")


def sample_csv() -> bytes:
    """A small products CSV in this format, for staff to start from."""
    return (
        b"sku,name,price,stock\r\n"
        b"MUG-1,Mug,7.50,40\r\n"
        b'MUG-2,"Mug, large",9.00,25\r\n'
        b"LAMP-1,Desk lamp,34.90,3\r\n"
        b"CARD-1,Gift card,0,0\r\n"
    )
