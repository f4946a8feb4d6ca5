"""Redaction of personal and payment data in log lines: e-mail addresses and card-like numbers."""

from __future__ import annotations

import logging
import re

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
# 13 to 19 digits, optionally grouped by spaces or dashes: the shape of a card number.
CARD_NUMBER = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")


def redact(text: str) -> str:
    """Mask e-mail addresses and card-like numbers."""
    return CARD_NUMBER.sub("[card]", EMAIL.sub("[email]", text))


def describe_arguments(args: tuple | list, kwargs: dict, *, reveal: bool) -> str:
    """Job arguments for a log line: redacted values when the actor has opted in, else a count."""
    if not reveal:
        return f"[redacted: {len(args)} positional, {len(kwargs)} keyword]"
    parts = [repr(arg) for arg in args] + [f"{key}={value!r}" for key, value in kwargs.items()]
    return redact("(" + ", ".join(parts) + ")")


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the formatted message of every record it passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
