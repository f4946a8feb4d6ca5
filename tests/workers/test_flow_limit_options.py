"""Flow limit options: what an actor may declare, and what is refused when it is declared."""

from __future__ import annotations

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker

from workers.flow_limit_options import parse_rate
from workers.middleware.limits import FlowControl, LimitOptionError


@pytest.mark.parametrize(
    ("text", "expected"),
    [("100/m", (100, 60_000)), ("20/s", (20, 1000)), ("10/5m", (10, 300_000)), (" 3 / h ", (3, 3_600_000))],
)
def test_a_rate_is_a_count_per_period(text, expected):
    assert parse_rate(text) == expected


@pytest.mark.parametrize(
    "options",
    [
        {"rate": ("gateway", "fast")},
        {"rate": ("gateway", "0/s")},
        {"concurrency": ("reports", 0)},
        {"concurrency": (42, 2)},
        {"concurrency": "reports"},
    ],
)
def test_a_malformed_limit_is_refused_when_the_actor_is_declared(options):
    # Given a broker with flow control
    broker = StubBroker(middleware=[FlowControl()])

    # When an actor declares a limit that is not a (key, limit) pair it can hold
    # Then the declaration fails, naming the actor, rather than the actor running unlimited
    with pytest.raises(LimitOptionError, match="actor limited"):
        dramatiq.actor(actor_name="limited", broker=broker, **options)(lambda: None)


def test_limits_are_read_from_the_actor_and_nothing_is_held_on_the_stub_broker():
    # Given an actor with both kinds of limit on the in-process broker
    flow = FlowControl()
    broker = StubBroker(middleware=[flow])
    actor = dramatiq.actor(
        actor_name="limited", broker=broker, concurrency=(lambda key: key, 2), rate=("shared", "5/s")
    )(lambda key: None)

    # Then both are known, and sending it sets no lane (limits are off on the StubBroker)
    assert [limit.kind for limit in flow.limits["limited"]] == ["concurrency", "rate"]
    message = actor.send("a")
    assert "flow_lane" not in message.options and "flow_keys" not in message.options
