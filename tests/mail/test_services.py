"""Mail: queued once per key, claimed, sent and marked with no lock held while it goes out, and sent once."""

from __future__ import annotations

import smtplib
import threading
from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from mail.errors import MailBeingSent
from mail.models import Mail
from mail.services import MAIL_CLAIM_LEASE, mail_fail, mail_send, queue_mail

pytestmark = pytest.mark.django_db


def make_mail(**fields) -> Mail:
    return Mail.objects.create(
        **{"key": "order-confirmed:1", "to": ["buyer@example.com"], "subject": "Confirmed", "body": "Hello", **fields}
    )


@pytest.mark.django_db(transaction=True)
def test_the_mail_goes_out_with_no_lock_held_on_its_row():
    # Given a mail, and an SMTP server that answers only once another connection has written its row
    queued = make_mail()
    written: list[int] = []

    def write_from_elsewhere() -> None:
        try:
            written.append(Mail.objects.filter(pk=queued.pk).update(subject="Confirmed (copy)"))
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
        mail_send(mail_id=queued.pk)

    # Then the other connection wrote the row during the send, and the mail is marked sent
    queued.refresh_from_db()
    assert (queued.status, queued.attempts, queued.subject) == ("sent", 1, "Confirmed (copy)")
    assert len(mail.outbox) == 1


def test_a_mail_claimed_by_a_running_attempt_is_not_sent_again_but_retried():
    # Given a mail another attempt claimed a moment ago
    queued = make_mail(sent_at=timezone.now(), attempts=1)

    # When a second queued of its job runs
    with pytest.raises(MailBeingSent):
        mail_send(mail_id=queued.pk)

    # Then nothing was sent, and the claim is left to its owner
    queued.refresh_from_db()
    assert (queued.status, queued.attempts) == ("pending", 1)
    assert mail.outbox == []


def test_a_claim_left_by_a_crashed_worker_is_taken_over_once_its_lease_has_lapsed():
    # Given a mail claimed by a worker that died before marking it
    queued = make_mail(sent_at=timezone.now() - MAIL_CLAIM_LEASE - timedelta(seconds=1), attempts=1)

    # When the job is tried again
    mail_send(mail_id=queued.pk)

    # Then the mail goes out and is marked sent
    queued.refresh_from_db()
    assert (queued.status, queued.attempts) == ("sent", 2)
    assert [m.to for m in mail.outbox] == [["buyer@example.com"]]


def test_a_send_that_fails_gives_its_claim_back_for_the_next_attempt():
    queued = make_mail()
    with (
        mock.patch("django.core.mail.EmailMessage.send", side_effect=smtplib.SMTPServerDisconnected("gone")),
        pytest.raises(smtplib.SMTPServerDisconnected),
    ):
        mail_send(mail_id=queued.pk)
    queued.refresh_from_db()
    assert (queued.status, queued.attempts, queued.sent_at) == ("pending", 1, None)

    mail_send(mail_id=queued.pk)
    mail_send(mail_id=queued.pk)
    queued.refresh_from_db()
    assert (queued.status, queued.attempts) == ("sent", 2)
    assert len(mail.outbox) == 1


def test_a_mail_failed_for_good_drops_its_claim_and_is_sent_when_replayed():
    # Given a mail whose retries ran out while a claim of it was left
    queued = make_mail(sent_at=timezone.now(), attempts=6)
    mail_fail(mail_id=queued.pk, error="SMTPServerDisconnected: gone")
    queued.refresh_from_db()
    assert (queued.status, queued.sent_at) == ("failed", None)

    # When its dead letter is replayed
    mail_send(mail_id=queued.pk)

    # Then it goes out
    queued.refresh_from_db()
    assert (queued.status, queued.error) == ("sent", "")
    assert len(mail.outbox) == 1


def test_a_key_queues_one_mail_however_often_it_is_queued(jobs, django_capture_on_commit_callbacks):
    # When the same mail is queued twice, the second time with other words
    with django_capture_on_commit_callbacks(execute=True):
        first = queue_mail(key="order-confirmed:7", to=["a@example.com"], subject="Confirmed", body="Hello")
        again = queue_mail(key="order-confirmed:7", to=["a@example.com"], subject="Confirmed!", body="Hi")

    # Then there is one mail, as first queued, and one job to send it
    assert again.pk == first.pk and Mail.objects.get().subject == "Confirmed"
    jobs.assert_enqueued(jobs.broker.get_actor("send_mail"), first.pk, count=1)


def test_a_mail_goes_out_with_its_html_body_and_its_attachments_to_every_recipient():
    queued = queue_mail(
        key="report-mailed:daily:2026-11-27",
        to=["a@example.com", "b@example.com"],
        subject="Daily report",
        body="Orders: 3",
        html="<p>Orders: 3</p>",
        attachments=[("report.csv", "\ufeffsku,quantity\r\nMUG-1,2\r\n", "text/csv")],
    )

    mail_send(mail_id=queued.pk)

    [message] = mail.outbox
    assert (message.to, message.subject, message.body) == (
        ["a@example.com", "b@example.com"],
        "Daily report",
        "Orders: 3",
    )
    assert message.alternatives[0][:2] == ("<p>Orders: 3</p>", "text/html")
    assert message.attachments == [("report.csv", "\ufeffsku,quantity\r\nMUG-1,2\r\n", "text/csv")]
