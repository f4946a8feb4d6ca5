"""Unique-job locks, on Redis and in memory alike: owned by one message, alive while it lives, then gone."""

from __future__ import annotations

import pytest

from workers.lock_keeper import LockKeeper
from workers.testing import wait_until
from workers.unique_locks import AGAIN, FIRST, HELD, QUEUED, RENEW, TAKEN, MemoryLocks, RedisLocks

#: Where the broker keeps the first message of these tests.
PLACE = ("default", "redis-id-1")


class Broker:
    """The messages the broker holds, as ``(queue, id)``: the ``.msgs`` hashes on Redis."""

    def __init__(self, redis_client=None) -> None:
        self.client = redis_client
        self.held: set[tuple[str, str]] = set()

    def hold(self, queue: str, id_: str) -> None:
        self.held.add((queue, id_))
        if self.client is not None:
            self.client.hset(f"test:{queue}.msgs", id_, b"message")

    def ack(self, queue: str, id_: str) -> None:
        self.held.discard((queue, id_))
        if self.client is not None:
            self.client.hdel(f"test:{queue}.msgs", id_)


@pytest.fixture(params=["redis", "memory"])
def store(request):
    """A lock store and the broker whose messages it can look up."""
    if request.param == "redis":
        client = request.getfixturevalue("redis_client")
        return RedisLocks(client, messages_prefix="test:"), Broker(client)
    broker = Broker()
    return MemoryLocks(queued=lambda queue, id_: (queue, id_) in broker.held), broker


def take(locks, owner: str, *, how: str = FIRST, ttl: int = 60_000, where=PLACE, key: str = "lock:a") -> int:
    return locks.take(key, owner, ttl=ttl, expires_in=ttl, where=where, how=how)


def test_a_lock_is_its_owners_to_take_again_and_no_one_elses(store):
    locks, _ = store

    assert take(locks, "message-1") == TAKEN
    assert take(locks, "message-2") == HELD
    assert take(locks, "message-1") == TAKEN  # its own resend: the first send never reached the broker
    assert take(locks, "message-1", how=AGAIN) == TAKEN
    assert not locks.release("lock:a", "message-2")
    assert locks.owner("lock:a") == "message-1"


def test_a_resend_of_a_message_the_broker_holds_is_refused_as_queued(store):
    locks, broker = store
    assert take(locks, "message-1") == TAKEN
    broker.hold(*PLACE)

    assert take(locks, "message-1") == QUEUED  # the send went through: sending it again would run it twice
    assert take(locks, "message-1", how=AGAIN) == TAKEN  # a retry re-sends the message it holds
    assert locks.owner("lock:a") == "message-1"


def test_a_lock_given_back_stays_given_back(store):
    locks, _ = store
    assert take(locks, "message-1") == TAKEN
    assert locks.release("lock:a", "message-1")

    assert take(locks, "message-1", how=RENEW) == HELD
    assert not locks.extend("lock:a", "message-1", ttl=60_000)
    assert locks.owner("lock:a") is None


def test_an_extended_lock_outlives_its_ttl_and_then_expires(store):
    locks, _ = store
    assert take(locks, "message-1", ttl=400) == TAKEN
    assert take(locks, "message-2", ttl=400, key="lock:b") == TAKEN

    # Extended while the other lock of the same ttl expires
    wait_until(
        lambda: locks.extend("lock:a", "message-1", ttl=400) and locks.owner("lock:b") is None,
        timeout=10,
        what="lock:b to expire",
    )
    assert locks.owner("lock:a") == "message-1"
    assert not locks.extend("lock:a", "message-2", ttl=60_000)  # not the owner's

    wait_until(lambda: locks.owner("lock:a") is None, timeout=10, what="lock:a to expire")


def test_an_extension_never_shortens_a_lock(store):
    locks, _ = store
    assert take(locks, "message-1", ttl=60_000) == TAKEN
    assert take(locks, "message-2", ttl=300, key="lock:b") == TAKEN

    locks.extend("lock:a", "message-1", ttl=300)

    wait_until(lambda: locks.owner("lock:b") is None, timeout=10, what="lock:b to expire")
    assert locks.owner("lock:a") == "message-1"


def test_refresh_extends_the_locks_whose_message_is_held_and_leaves_the_others(store):
    locks, broker = store
    broker.hold(*PLACE)
    assert take(locks, "queued", ttl=400, key="unique:a") == TAKEN
    assert take(locks, "gone", ttl=400, key="unique:b", where=("default", "redis-id-2")) == TAKEN
    assert take(locks, "unplaced", ttl=400, key="unique:c", where=None) == TAKEN
    assert take(locks, "other", ttl=400, key="elsewhere:d") == TAKEN  # not under the prefix

    def refreshed_until_the_rest_expired() -> bool:
        assert locks.refresh_queued("unique:") == 1
        return all(locks.owner(key) is None for key in ("unique:b", "unique:c", "elsewhere:d"))

    wait_until(refreshed_until_the_rest_expired, timeout=10, what="the unrefreshed locks to expire")
    assert locks.owner("unique:a") == "queued"

    broker.ack(*PLACE)
    assert locks.refresh_queued("unique:") == 0
    wait_until(lambda: locks.owner("unique:a") is None, timeout=10, what="the acknowledged message's lock to expire")


def test_a_lock_written_before_it_recorded_its_place_still_knows_its_owner(redis_client):
    locks = RedisLocks(redis_client, messages_prefix="test:")
    redis_client.set("lock:a", "message-1", px=60_000)

    assert locks.owner("lock:a") == "message-1"
    assert take(locks, "message-1") == TAKEN
    assert locks.refresh_queued("lock:") == 0  # no place: left to expire
    assert locks.release("lock:a", "message-1")


def test_the_keeper_keeps_a_running_jobs_lock_until_let_go(store):
    locks, _ = store
    keeper = LockKeeper()
    assert take(locks, "running", ttl=400) == TAKEN
    assert take(locks, "reference", ttl=400, key="lock:b") == TAKEN

    keeper.keep(locks, "lock:a", "running", ttl=400)
    wait_until(lambda: locks.owner("lock:b") is None, timeout=10, what="the reference lock to expire")
    assert locks.owner("lock:a") == "running"

    keeper.let_go("lock:a", "running")
    wait_until(lambda: locks.owner("lock:a") is None, timeout=10, what="the lock let go to expire")
    keeper.stop()
    assert keeper.thread is None
