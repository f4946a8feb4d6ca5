"""Date arguments of the report commands: a bad one ends the command with a clear error and status 2."""

from __future__ import annotations

from datetime import date

from django.core.management.base import CommandError

from reports.errors import InvalidDay
from reports.periods import day_before, ensure_over, parse_day

#: The exit status of a command given arguments it cannot use, as argparse exits.
USAGE_ERROR = 2


def ended_day(value: str | None, *, option: str) -> date:
    """The day an option names, which must have ended; yesterday when the option is not given."""
    if value is None:
        return day_before()
    try:
        return ensure_over(parse_day(value))
    except InvalidDay as error:
        raise CommandError(f"{option}: {error}", returncode=USAGE_ERROR) from None
