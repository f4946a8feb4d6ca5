"""read_ahead: items in order from a thread, errors where they happened, and a stop that really stops."""

from __future__ import annotations

import itertools
import threading

import pytest

from workers.readahead import read_ahead


def test_every_item_comes_in_order_made_on_another_thread():
    makers = []

    def items():
        for n in range(100):
            makers.append(threading.current_thread())
            yield n

    assert list(read_ahead(items(), depth=3)) == list(range(100))
    assert set(makers) == {makers[0]} and makers[0] is not threading.current_thread()


def test_an_error_while_making_an_item_is_raised_where_that_item_would_come():
    def items():
        yield 1
        yield 2
        raise ValueError("row 3 is broken")

    received = []
    with pytest.raises(ValueError, match="row 3 is broken"):
        for item in read_ahead(items()):
            received.append(item)
    assert received == [1, 2]


def test_the_producer_stays_within_depth_of_the_consumer():
    made = []
    consumed = 0

    def items():
        for n in itertools.count():
            made.append(n)
            yield n

    for _ in read_ahead(items(), depth=2):
        consumed += 1
        # one item handed over, two waiting, one being made
        assert len(made) <= consumed + 3
        if consumed == 50:
            break


def test_a_consumer_that_stops_early_stops_the_thread():
    def endless():
        yield from itertools.count()

    before = {thread.ident for thread in threading.enumerate()}
    with pytest.raises(RuntimeError, match="the database went away"):
        for n in read_ahead(endless(), name="endless"):
            if n == 10:
                raise RuntimeError("the database went away")
    assert not [thread for thread in threading.enumerate() if thread.ident not in before]


def test_depth_below_one_is_refused():
    with pytest.raises(ValueError, match="depth must be at least 1"):
        next(read_ahead([1], depth=0))
