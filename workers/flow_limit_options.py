"""Flow limit options as an actor declares them: ``concurrency=(key, n)`` and ``rate=(key, "100/m")``, read as limits.

A key is a string (one limit shared by every actor naming it) or a function of the job's
arguments (one limit per value, the actor's own); either option may also be a list of pairs.
``workers.flow_limits`` holds the limits in Redis; ``workers.middleware.limits`` applies them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CONCURRENCY = "concurrency"
RATE = "rate"
UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
RATE_PATTERN = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(ms|s|m|h|d)\s*$")


@dataclass(frozen=True)
class Limit:
    """One limit of an actor: ``n`` running jobs, or ``n`` starts per ``period_ms``, per value of ``key``."""

    kind: str
    key: object  # a constant (one limit for all jobs) or a function of the job's arguments
    n: int
    period_ms: int = 0
    text: str = ""


def parse_rate(text: str) -> tuple[int, int]:
    """``"100/m"`` -> (100, 60000): a count and a period in milliseconds (``"10/2s"`` too)."""
    match = RATE_PATTERN.match(text)
    if not match or int(match.group(1)) < 1:
        raise ValueError(f"rate {text!r} is not a count per period such as '100/m', '20/s' or '10/5m'")
    count, multiple, unit = int(match.group(1)), int(match.group(2) or "1"), match.group(3)
    return count, multiple * UNITS_MS[unit]


def parse_limits(kind: str, option) -> list[Limit]:
    """An actor's ``concurrency`` or ``rate`` option (one ``(key, value)`` pair or a list of them) as limits."""
    pairs = option if isinstance(option, list) else [option]
    limits = []
    for pair in pairs:
        if not (isinstance(pair, tuple) and len(pair) == 2 and (callable(pair[0]) or isinstance(pair[0], str))):
            raise ValueError(f"{kind}={pair!r} is not a (key, limit) pair whose key is a string or a function")
        key, value = pair
        if kind == CONCURRENCY:
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"concurrency limit {value!r} is not a whole number of at least 1")
            limits.append(Limit(kind, key, value, text=f"{value} running"))
        else:
            count, period_ms = parse_rate(value)
            limits.append(Limit(kind, key, count, period_ms, text=value))
    return limits
