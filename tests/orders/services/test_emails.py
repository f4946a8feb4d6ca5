"""E-mail deliveries: claimed, sent and marked with no lock held while the mail goes out, and sent once."""

from __future__ import annotations

import smtplib
import threading
from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from orders.errors import MailBeingSent
from orders.models import EmailDelivery
from orders.services.emails import MAIL_CLAIM_LEASE, email_deliver, email_fail

pytestmark = pytest.mark.django_db


def make_delivery(**fields) -> EmailDelivery:
    return EmailDelivery.objects.create(
        **{"key": "order-confirmed:1", "to": "buyer@example.com", "subject": "Confirmed", "body": "Hello", **fields}
    )


@pytest.mark.django_db(transaction=True)
def test_the_mail_goes_out_with_no_lock_held_on_its_row():
    # Given a mail, and an SMTP server that answers only once another connection has written its row
    delivery = make_delivery()
    written: list[int] = []

    def write_from_elsewhere() -> None:
        try:
            written.append(EmailDelivery.objects.filter(pk=delivery.pk).update(subject="Confirmed (copy)"))
        finally:
            connection.close()

    def send(message, *args, **kwargs) -> int:
        other = threading.Thread(target=write_from_elsewhere)
        other.start()
        other.join(timeout=10)
        assert written == [1], "the row was locked while the mail went out"
        mail.outbox.append(message)
        return 1

    # When the mail is sent
    with mock.patch("django.core.mail.EmailMessage.send", autospec=True, side_effect=send):
        email_deliver(delivery_id=delivery.pk)

    # Then the other connection wrote the row during the send, and the mail is marked sent
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.subject) == ("sent", 1, "Confirmed (copy)")
    assert len(mail.outbox) == 1


def test_a_mail_claimed_by_a_running_attempt_is_not_sent_again_but_retried():
    # Given a mail another attempt claimed a moment ago
    delivery = make_delivery(sent_at=timezone.now(), attempts=1)

    # When a second delivery of its job runs
    with pytest.raises(MailBeingSent):
        email_deliver(delivery_id=delivery.pk)

    # Then nothing was sent, and the claim is left to its owner
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert mail.outbox == []


def test_a_claim_left_by_a_crashed_worker_is_taken_over_once_its_lease_has_lapsed():
    # Given a mail claimed by a worker that died before marking it
    delivery = make_delivery(sent_at=timezone.now() - MAIL_CLAIM_LEASE - timedelta(seconds=1), attempts=1)

    # When the job is tried again
    email_deliver(delivery_id=delivery.pk)

    # Then the mail goes out and is marked sent
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert [m.to for m in mail.outbox] == [["buyer@example.com"]]


def test_a_send_that_fails_gives_its_claim_back_for_the_next_attempt():
    delivery = make_delivery()
    with (
        mock.patch("django.core.mail.EmailMessage.send", side_effect=smtplib.SMTPServerDisconnected("gone")),
        pytest.raises(smtplib.SMTPServerDisconnected),
    ):
        email_deliver(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.sent_at) == ("pending", 1, None)

    email_deliver(delivery_id=delivery.pk)
    email_deliver(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert len(mail.outbox) == 1


def test_a_mail_failed_for_good_drops_its_claim_and_is_sent_when_replayed():
    # Given a mail whose retries ran out while a claim of it was left
    delivery = make_delivery(sent_at=timezone.now(), attempts=6)
    email_fail(delivery_id=delivery.pk, error="SMTPServerDisconnected: gone")
    delivery.refresh_from_db()
    assert (delivery.status, delivery.sent_at) == ("failed", None)

    # When its dead letter is replayed
    email_deliver(delivery_id=delivery.pk)

    # Then it goes out
    delivery.refresh_from_db()
    assert (delivery.status, delivery.error) == ("sent", "")
    assert len(mail.outbox) == 1
