"""Calendar days in the configured time zone: read from text, their bounds, and whether one is over."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

from django.utils import timezone

from reports.errors import InvalidDay


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The first instant of the day and of the next one, local midnights as aware datetimes.

    Built from the calendar, not by adding 24 hours: the day a clock goes forward lasts 23
    hours and the day it goes back 25.
    """
    zone = timezone.get_default_timezone()
    return (
        datetime.combine(day, time.min, tzinfo=zone),
        datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone),
    )


def day_before(moment: datetime | None = None) -> date:
    """The local calendar day before the one ``moment`` (default now) falls on."""
    return timezone.localdate(moment) - timedelta(days=1)


def is_over(day: date) -> bool:
    """True once the day has ended in the configured time zone."""
    return day < timezone.localdate()


#: The earliest day a report can be of: days before it have no bounds in every time zone.
FIRST_DAY = date(1970, 1, 1)


def parse_day(text: str) -> date:
    """A YYYY-MM-DD date from FIRST_DAY on; anything else raises InvalidDay naming the value.

    Only that form: ``date.fromisoformat`` also takes 20261127 and 2026-W48-1.
    """
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError(text)
        day = date.fromisoformat(text)
    except (TypeError, ValueError):
        raise InvalidDay(f"{text!r} is not a date (YYYY-MM-DD)") from None
    if day < FIRST_DAY:
        raise InvalidDay(f"{day.isoformat()} is before {FIRST_DAY.isoformat()}, the earliest day a report can be of")
    return day


def ensure_over(day: date) -> date:
    """The day itself if it has ended; a report of a day still going on would be partial."""
    if not is_over(day):
        raise InvalidDay(f"{day.isoformat()} has not ended yet in {timezone.get_default_timezone_name()}")
    return day
