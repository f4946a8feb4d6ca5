"""Every place the platform leans on Dramatiq's private internals, gathered here and checked against its version.

Dramatiq's public API (actors, middleware hooks, a broker's ``enqueue``) does not reach far
enough for bulk sends, recovery, malformed messages or readable logs, so a few things are
read or copied from its private parts. The rest of the platform takes them from here, never
from Dramatiq's modules directly, so that an upgrade starts by reading this package against
the new sources; ``tests/workers/dramatiq_internals/test_dramatiq_contract.py`` fails on the day
one of them changes underneath, and a system check refuses to start on a Dramatiq this was not
written for.

- ``keys``: the Redis broker's key layout (queues, message hashes, ack sets, heartbeats, dead
  letters), for bulk sends, housekeeping, unique locks and the dashboard.
- ``consumers``: broker subclasses whose consumers refuse malformed bodies one by one and take
  back what a lost connection dropped from memory (``redis_broker``, ``redis_consumer``,
  ``held_messages``, ``rabbitmq``, and ``admission`` for what they share).
- ``lanes``: a queue's jobs of different keys served round-robin (each key's lane, and the fetch
  that takes the lanes in turn); the Redis broker's sends ring a doorbell its idle consumers wait on
  (``doorbell``: one listener per worker process for all of them, which also beats for them).
- ``holdings``: which worker holds which ack set, and whether that worker is alive.
- ``worker``: the consumer thread's prefetch, the work queue (what waits for a thread), the
  worker's log texts, and its message loop as the in-process test harness replays it.
"""

from __future__ import annotations

import dramatiq

#: The Dramatiq release (major.minor) these internals were read from.
WRITTEN_FOR = "2.2"


def version_problem(version: str = dramatiq.__version__) -> str | None:
    """Why the installed Dramatiq cannot be trusted with these internals, or None if it can."""
    if ".".join(version.split(".")[:2]) == WRITTEN_FOR:
        return None
    return (
        f"Dramatiq {version} is installed, but workers/dramatiq_internals/ was written for {WRITTEN_FOR}.x: "
        "read it against the new sources, run tests/workers/dramatiq_internals/test_dramatiq_contract.py, "
        "then update WRITTEN_FOR"
    )
