"""Keyset pagination: walk a large table in chunks whose cost does not grow with the position.

``OFFSET n`` makes the database read and throw away n rows for every chunk, so a walk over a
table is quadratic in its size; ``WHERE key > last ORDER BY key LIMIT size`` reads only the
chunk through the key's index, so the walk is linear (see the ``keyset`` benchmark).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet

#: Rows per chunk unless a caller says otherwise.
CHUNK_SIZE = 1000


def keyset_page(queryset: QuerySet, *, after: Any = None, size: int = CHUNK_SIZE, key: str = "pk") -> list:
    """The next ``size`` keys of ``queryset`` after ``after`` (from the start when None), in order."""
    if after is not None:
        queryset = queryset.filter(**{f"{key}__gt": after})
    return list(queryset.order_by(key).values_list(key, flat=True)[:size])


def keyset_chunks(queryset: QuerySet, *, size: int = CHUNK_SIZE, key: str = "pk") -> Iterator[list]:
    """Every key of ``queryset`` in order, as lists of up to ``size``."""
    after = None
    while page := keyset_page(queryset, after=after, size=size, key=key):
        yield page
        if len(page) < size:
            return
        after = page[-1]
