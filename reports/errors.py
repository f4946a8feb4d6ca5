"""Domain errors of reports, and whether a job may retry them."""

from workers.errors import PermanentError


class InvalidDay(PermanentError):
    """A report was asked for something that is not a date, or for a day that has not ended yet."""
