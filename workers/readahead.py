"""Read ahead: produce the next items of a long job in a thread while the job writes the last ones.

A job that reads a file and writes to the database spends much of its time waiting on the
database, with Python idle. ``read_ahead`` runs the reading in a thread of its own, at most
``depth`` items ahead, so that waiting and reading overlap. Written here because the standard
library has no bounded iterator of this kind that can be stopped part way: an executor runs
separate calls, not one generator that must stay on one thread, and ``prefetch_generator``
style helpers keep producing after the consumer has gone.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

#: How often a producer waiting for room looks whether the consumer has stopped, in seconds.
_POLL = 0.05
_END = object()


def read_ahead(items: Iterable[T], *, depth: int = 1, name: str = "read-ahead") -> Iterator[T]:
    """Yield ``items`` in order, made by a background thread that keeps at most ``depth`` of them waiting.

    An exception raised while making an item is raised here, with its traceback, where that item
    would have come. When the consumer stops early (a ``break``, an exception, ``close()``), the
    thread stops after the item it is making, and is joined before this returns, so nothing
    runs on behind the caller's back. The items must not share state with what the consumer
    does (a database connection, say): the thread runs beside it.
    """
    if depth < 1:
        raise ValueError(f"depth must be at least 1, not {depth}")
    handoff: queue.Queue = queue.Queue(maxsize=depth)
    stopped = threading.Event()

    def hand_over(entry: tuple[bool, object]) -> bool:
        while not stopped.is_set():
            try:
                handoff.put(entry, timeout=_POLL)
            except queue.Full:
                continue
            return True
        return False

    def produce() -> None:
        try:
            for item in items:
                if not hand_over((True, item)):
                    return
        except BaseException as error:  # noqa: BLE001 - every error goes to the consumer, to be raised there
            hand_over((False, error))
        else:
            hand_over((True, _END))

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            made, item = handoff.get()
            if not made:
                raise item
            if item is _END:
                return
            yield item
    finally:
        stopped.set()
        thread.join()
