"""Redaction of log lines: e-mail addresses and card numbers are masked, in time linear in the line."""

from __future__ import annotations

import logging

import pytest
from dramatiq import Message
from dramatiq.broker import MessageProxy

from workers.redaction import RedactingFilter, is_card_number, redact


@pytest.mark.parametrize(
    ("line", "redacted"),
    [
        ("mail to bob.smith+orders@example.co.uk failed", "mail to [email] failed"),
        ("<jane_doe-1@mail.example.com>, ann@ex.org", "<[email]>, [email]"),
        ("charged 4111 1111 1111 1111 today", "charged [card] today"),
        ("charged 4111-1111-1111-1111", "charged [card]"),
        ("pan=5500000000000004;", "pan=[card];"),
        ("amex 378282246310005", "amex [card]"),
        ("old visa 4222222222222", "old visa [card]"),
        # A card number run into the next group of digits is still masked
        ("card 4111 1111 1111 1111 7 x", "card [card] x"),
    ],
)
def test_addresses_and_card_numbers_are_masked(line, redacted):
    assert redact(line) == redacted


@pytest.mark.parametrize(
    "line",
    [
        # An EAN-13 SKU, a millisecond timestamp, an order number of 16 digits that fails Luhn
        "sku=4006381333931 qty=2",
        "message_timestamp=1718000000000",
        "order 1234567890123456",
        # Too short to be a card, not an address
        "order 4111 1111 1111",
        "user@localhost and a@b",
    ],
)
def test_skus_timestamps_and_other_numbers_are_left_alone(line):
    assert redact(line) == line


def test_card_numbers_are_told_apart_by_the_luhn_check():
    assert is_card_number("4111111111111111")
    assert not is_card_number("4111111111111112")
    # 13 digits are a card only as an old Visa number: a timestamp that passes Luhn is not one
    assert not is_card_number("1718000000006") and is_card_number("4222222222222")


@pytest.mark.parametrize(
    "text",
    [
        "a" * 1_000_000,
        "7" * 1_000_000,
        "a1_" * 333_334,
        "a." * 500_000,
        "a@" * 500_000,
        "ab-" * 333_334,
        ("x" * 999 + "@") * 1000,
    ],
    ids=["letters", "digits", "word characters", "dotted", "at signs", "dashed", "long local parts"],
)
def test_a_million_characters_without_an_address_pass_unchanged(text):
    # A pattern that retried the run from each of its positions would take hours here
    assert redact(text) == text


def test_an_address_at_the_end_of_a_million_word_characters_is_found():
    text = "a" * 1_000_000 + " bob@example.com"
    assert redact(text) == "a" * 1_000_000 + " [email]"
    assert redact("a" * 1_000_000 + "@example.com") == "[email]"


def test_a_message_in_a_log_line_is_named_by_actor_and_id_not_by_its_arguments():
    # Given Dramatiq's worker logging a skipped message with a customer's data in its arguments
    message = MessageProxy(
        Message(
            queue_name="default",
            actor_name="send_email",
            args=("secret-token",),
            kwargs={"address": "x" * 10_000},
            options={},
            message_id="m-1",
        )
    )
    record = logging.LogRecord(
        "dramatiq.worker.WorkerThread", logging.WARNING, __file__, 1, "Message %s was skipped.", (message,), None
    )

    # When the line passes the handler's filter
    assert RedactingFilter().filter(record)

    # Then it names the job by actor and id only
    assert record.getMessage() == "Message send_email message_id=m-1 was skipped."
