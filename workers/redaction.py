"""Redaction of personal and payment data in log lines: e-mail addresses, card numbers, job arguments."""

from __future__ import annotations

import logging
import re

from dramatiq import Message
from dramatiq.broker import MessageProxy

# Both patterns take time linear in the text, whatever it holds: they run on every log line,
# and a line may carry megabytes. An address may only start where the character before could
# not belong to it, so a long run of word characters is tried from its start only, not from
# each of its positions; the possessive quantifiers never give back what they took (none of
# them could be followed by a character of its own class).
EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]++@[\w-]++(?:\.[\w-]++)+")
# 13 to 19 digits, optionally grouped by spaces or dashes: the shape of a card number. A
# candidate is masked only if its digits pass the Luhn check (see ``is_card_number``).
CARD_CANDIDATE = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
CARD_GROUP_SEPARATOR = re.compile(r"[ -]")


def redact(text: str) -> str:
    """Mask e-mail addresses and card numbers."""
    return CARD_CANDIDATE.sub(_mask_card, EMAIL.sub("[email]", text))


def is_card_number(digits: str) -> bool:
    """True for 13 to 19 digits that pass the Luhn check; 13 digits only as old Visa numbers do (a 4 first).

    Payment card numbers end with a Luhn check digit; SKUs (EAN-13 has its own check digit),
    order numbers and millisecond timestamps mostly do not, and a 13-digit timestamp starts
    with 1 (until the year 2286).
    """
    if not 13 <= len(digits) <= 19 or (len(digits) == 13 and digits[0] != "4"):
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _mask_card(match: re.Match) -> str:
    candidate = match.group()
    groups = CARD_GROUP_SEPARATOR.split(candidate)
    if len(groups) == 1:
        return "[card]" if is_card_number(candidate) else candidate
    # The candidate may run a card number into a neighbouring group ("4111 1111 1111 1111 7"):
    # any run of whole groups that is a card number masks it.
    for start in range(len(groups)):
        digits = ""
        for group in groups[start:]:
            digits += group
            if len(digits) > 19:
                break
            if len(digits) >= 13 and is_card_number(digits):
                return "[card]"
    return candidate


def describe_arguments(args: tuple | list, kwargs: dict, *, reveal: bool) -> str:
    """Job arguments for a log line: redacted values when the actor has opted in, else a count."""
    if not reveal:
        return f"[redacted: {len(args)} positional, {len(kwargs)} keyword]"
    parts = [repr(arg) for arg in args] + [f"{key}={value!r}" for key, value in kwargs.items()]
    return redact("(" + ", ".join(parts) + ")")


def name_message(message: Message | MessageProxy) -> str:
    """A message as log lines name it: actor and id, never its arguments."""
    return f"{message.actor_name} message_id={message.message_id}"


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the formatted message of every record it passes.

    A message passed as a formatting argument (Dramatiq's worker does so in "Message %s was
    skipped." and other lines) is named by actor and id: its own rendering shows every argument.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(arg, (Message, MessageProxy)) for arg in record.args):
            record.args = tuple(
                name_message(arg) if isinstance(arg, (Message, MessageProxy)) else arg for arg in record.args
            )
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
