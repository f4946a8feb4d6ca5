"""Mail services: queue a mail once per purpose, send it once, mark it failed for good."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from mail.errors import MailBeingSent
from mail.models import Mail
from workers.enqueue import actor_named, enqueue_on_commit

#: How long a claim keeps other attempts off a mail; then a later attempt may take it over.
MAIL_CLAIM_LEASE = timedelta(seconds=60)
#: The SMTP socket timeout, in seconds: well inside the lease, so a live send ends before it lapses.
MAIL_SEND_TIMEOUT = 20

SEND_MAIL = actor_named("send_mail")


def queue_mail(
    *,
    key: str,
    to: list[str],
    subject: str,
    body: str,
    html: str = "",
    attachments: Iterable[tuple[str, str, str]] = (),
) -> Mail:
    """Record the mail and send it after commit; the same key never queues a second mail.

    ``attachments`` are text files, each (filename, content, MIME type).
    """
    mail, created = Mail.objects.get_or_create(
        key=key,
        defaults={
            "to": list(to),
            "subject": subject[:200],
            "body": body,
            "html": html,
            "attachments": [
                {"filename": filename, "content": content, "mimetype": mimetype}
                for filename, content, mimetype in attachments
            ],
        },
    )
    if created:
        enqueue_on_commit(SEND_MAIL, mail.pk)
    return mail


def mail_message(mail: Mail) -> EmailMultiAlternatives:
    """The e-mail a mail record describes."""
    message = EmailMultiAlternatives(subject=mail.subject, body=mail.body, to=list(mail.to))
    if mail.html:
        message.attach_alternative(mail.html, "text/html")
    for attachment in mail.attachments:
        message.attach(attachment["filename"], attachment["content"], attachment["mimetype"])
    return message


def mail_send(*, mail_id: int) -> Mail:
    """Send the mail unless its record says it was sent.

    Claim, send, mark, with no lock held while the mail goes out: the claim is one conditional
    update that stamps ``sent_at`` (while the status is not "sent", that is when the latest
    attempt began), so a second delivery of the job finds the mail sent, or claimed and raises
    MailBeingSent to be retried. A claim lapses after ``MAIL_CLAIM_LEASE``, so the mail of a
    worker that died mid-send goes out on a later attempt; a send that fails gives its claim
    back at once. A crash after the SMTP server accepted the mail and before it is marked can
    still send it twice: SMTP has no idempotency key.
    """
    claimed_at = timezone.now()
    claimed = (
        Mail.objects.filter(Q(sent_at__isnull=True) | Q(sent_at__lt=claimed_at - MAIL_CLAIM_LEASE), pk=mail_id)
        .exclude(status=Mail.Status.SENT)
        .update(sent_at=claimed_at, attempts=F("attempts") + 1)
    )
    mail = Mail.objects.get(pk=mail_id)
    if not claimed:
        if mail.status == Mail.Status.SENT:
            return mail
        raise MailBeingSent(f"mail {mail_id} is being sent by an attempt that began at {mail.sent_at}")
    try:
        message = mail_message(mail)
        message.connection = get_connection(timeout=MAIL_SEND_TIMEOUT)
        message.send()
    except BaseException:
        Mail.objects.filter(pk=mail_id, sent_at=claimed_at).exclude(status=Mail.Status.SENT).update(sent_at=None)
        raise
    mail.status, mail.sent_at, mail.error = Mail.Status.SENT, timezone.now(), ""
    Mail.objects.filter(pk=mail_id).update(status=mail.status, sent_at=mail.sent_at, error="")
    return mail


def mail_fail(*, mail_id: int, error: str) -> Mail:
    """Mark a mail as failed for good (its retries are exhausted), unless it was sent meanwhile; drops its claim."""
    with transaction.atomic():
        mail = Mail.objects.select_for_update().get(pk=mail_id)
        if mail.status == Mail.Status.PENDING:
            mail.status = Mail.Status.FAILED
            mail.error = error[:2000]
            mail.sent_at = None
            mail.save(update_fields=["status", "error", "sent_at"])
    return mail
