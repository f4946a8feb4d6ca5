"""The campaign's invariants, each one line: nothing lost, nothing doubled, nothing looping, nothing hidden.

``domain`` checks what the shop's data says (orders, payments, mails, stock, the import, the
price batch, the backfill); ``platform`` checks what the job platform says (callbacks, crash
loops, dead letters, probes, what is left in the broker). Each check runs inside the project
once the system has settled (see ``chaos.verify``) and returns a ``Check`` with the figures it
looked at, whatever its verdict.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    figures: str


def examples(items: list) -> str:
    """A few of the items at fault, to start looking from."""
    return f" (e.g. {', '.join(str(item) for item in items[:5])})" if items else ""
