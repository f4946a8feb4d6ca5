"""Price lists uploaded as CSV (columns sku and price): read whole and checked before any item is written.

A file is taken whole or not at all: one unknown SKU or bad price refuses it, with every bad
line named, so staff fix the file and upload it again rather than hunt for what went in. Lines
are numbered as a spreadsheet numbers them (the header is line 1); the reading itself (UTF-8,
quoting, binary files, overlong lines) is the products CSV's, :class:`orders.product_csv.ProductCsv`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import BinaryIO

from orders.errors import ImportFileUnusable
from orders.models import Product
from orders.product_csv import ProductCsv, _price

COLUMNS = ("sku", "price")
#: SKUs looked up per query: under every database's limit of bound parameters.
LOOKUP_CHUNK = 900


@dataclass(frozen=True, slots=True)
class LineError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


class PriceFileInvalid(Exception):
    """The file cannot be taken: it is unreadable (one error, line 0: the whole file) or some lines are wrong."""

    def __init__(self, errors: list[LineError]) -> None:
        super().__init__("; ".join(str(error) for error in errors[:3]))
        self.errors = errors


def price_file_read(stream: BinaryIO) -> dict[int, Decimal]:
    """The new price of each product the file names, by product id; raise PriceFileInvalid naming every bad line."""
    source = ProductCsv(stream)
    rows = source.rows()
    try:
        sku_at, price_at, width = _header(next(rows, None))
        by_sku: dict[str, tuple[int, Decimal | None]] = {}
        errors: list[LineError] = []
        for values in rows:
            line = source.row
            if len(values) != width:
                errors.append(LineError(line, f"has {len(values)} values, the header has {width}"))
                continue
            sku = values[sku_at].strip()
            price, price_error = _price(values[price_at].strip())
            if not sku:
                errors.append(LineError(line, "the SKU is empty"))
            elif sku in by_sku:
                errors.append(LineError(line, f"SKU {sku!r} is on line {by_sku[sku][0]} already"))
            else:
                by_sku[sku] = (line, price)
            if price_error:
                errors.append(LineError(line, f"the price {price_error}"))
    except ImportFileUnusable as error:
        raise PriceFileInvalid([LineError(0, str(error))]) from None
    if not by_sku and not errors:
        raise PriceFileInvalid([LineError(0, "The file has a header but no lines.")])
    ids = _product_ids(list(by_sku))
    errors.extend(
        LineError(line, f"no product has the SKU {sku!r}") for sku, (line, _) in by_sku.items() if sku not in ids
    )
    if errors:
        raise PriceFileInvalid(sorted(errors, key=lambda error: error.line))
    return {ids[sku]: price for sku, (_, price) in by_sku.items()}


def _header(names: list[str] | None) -> tuple[int, int, int]:
    """Where the sku and price columns are, and how many columns there are; other columns are ignored."""
    if names is None:
        raise ImportFileUnusable("The file is empty.")
    found = [name.strip().lower() for name in names]
    missing = [column for column in COLUMNS if column not in found]
    if missing:
        raise ImportFileUnusable(
            f"The header lacks {' and '.join(missing)}: line 1 names the columns sku and price (others are ignored)."
        )
    return found.index("sku"), found.index("price"), len(found)


def _product_ids(skus: list[str]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for start in range(0, len(skus), LOOKUP_CHUNK):
        chunk = skus[start : start + LOOKUP_CHUNK]
        ids.update(Product.objects.filter(sku__in=chunk).values_list("sku", "pk"))
    return ids
