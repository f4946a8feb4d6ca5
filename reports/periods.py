"""Calendar days in the configured time zone: read from text, their bounds, and whether one is over."""

from __future__ import annotations

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


def parse_day(text: str) -> date:
    """A YYYY-MM-DD date; anything else raises InvalidDay naming the value."""
    try:
        return date.fromisoformat(text)
    except (TypeError, ValueError):
        raise InvalidDay(f"{text!r} is not a date (YYYY-MM-DD)") from None


def ensure_over(day: date) -> date:
    """The day itself if it has ended; a report of a day still going on would be partial."""
    if not is_over(day):
        raise InvalidDay(f"{day.isoformat()} has not ended yet in {timezone.get_default_timezone_name()}")
    return day
