"""Keyset pagination: every key once, in order, in chunks of the size asked, whatever the filter."""

from __future__ import annotations

import pytest

from workers.keyset import keyset_chunks, keyset_page
from workers.models import Batch

pytestmark = pytest.mark.django_db


def make_batches(count: int) -> list[int]:
    return [batch.pk for batch in Batch.objects.bulk_create(Batch(description=f"b{n}") for n in range(count))]


def test_a_page_is_the_next_keys_after_the_one_given_in_order():
    ids = make_batches(7)

    assert keyset_page(Batch.objects.all(), size=3) == ids[:3]
    assert keyset_page(Batch.objects.all(), after=ids[2], size=3) == ids[3:6]
    assert keyset_page(Batch.objects.all(), after=ids[5], size=3) == ids[6:]
    assert keyset_page(Batch.objects.all(), after=ids[6], size=3) == []


def test_a_page_ignores_the_querysets_own_order():
    ids = make_batches(4)

    assert keyset_page(Batch.objects.order_by("-pk"), size=10) == ids


def test_the_chunks_hold_every_key_once_and_no_empty_chunk_when_the_size_divides_the_count():
    ids = make_batches(6)

    assert list(keyset_chunks(Batch.objects.all(), size=3)) == [ids[:3], ids[3:]]
    assert list(keyset_chunks(Batch.objects.all(), size=4)) == [ids[:4], ids[4:]]


def test_the_chunks_walk_a_filtered_queryset_only():
    ids = make_batches(5)
    Batch.objects.filter(pk__in=ids[1::2]).update(status=Batch.Status.CANCELLED)

    chunks = list(keyset_chunks(Batch.objects.exclude(status=Batch.Status.CANCELLED), size=2))

    assert chunks == [[ids[0], ids[2]], [ids[4]]]


def test_the_chunks_of_an_empty_queryset_are_none():
    assert list(keyset_chunks(Batch.objects.none())) == []


def test_a_walk_by_another_key_gives_that_keys_values():
    make_batches(3)

    assert list(keyset_chunks(Batch.objects.all(), size=2, key="description")) == [["b0", "b1"], ["b2"]]
