"""E-mail deliveries: queue a mail once per purpose, and send it once."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from django.core.mail import EmailMessage
from django.db import models, transaction
from django.db.models import QuerySet
from django.utils import timezone

from orders.models import EmailDelivery
from workers.enqueue import enqueue_on_commit

M = TypeVar("M", bound=models.Model)


def email_queue(*, key: str, to: str, subject: str, body: str) -> EmailDelivery:
    """Record the mail and send it after commit; the same key never queues a second mail."""
    delivery, created = EmailDelivery.objects.get_or_create(
        key=key, defaults={"to": to, "subject": subject[:200], "body": body}
    )
    if created:
        from orders.tasks import send_email

        enqueue_on_commit(send_email, delivery.pk)
    return delivery


def email_deliver(*, delivery_id: int) -> EmailDelivery:
    """Send the mail unless it was sent already."""
    return mail_send_once(
        EmailDelivery.objects.all(),
        delivery_id,
        lambda delivery: EmailMessage(subject=delivery.subject, body=delivery.body, to=[delivery.to]),
    )


def email_fail(*, delivery_id: int, error: str) -> EmailDelivery:
    """Mark a mail as failed for good (its retries are exhausted)."""
    return mail_fail(EmailDelivery.objects.all(), delivery_id, error)


def mail_send_once(queryset: QuerySet[M], pk: int, build: Callable[[M], EmailMessage]) -> M:
    """Send the mail that ``build`` makes of a mail record, unless the record says it was sent.

    For any record with ``status`` (pending, sent, failed), ``attempts``, ``sent_at`` and
    ``error``: e-mail deliveries and report mails. The row stays locked while the mail goes
    out, so a second delivery of the job waits and then finds it sent. A crash after the SMTP
    server accepted the mail and before the commit can still send it twice: SMTP has no
    idempotency key.
    """
    with transaction.atomic():
        record = queryset.select_for_update(of=("self",)).get(pk=pk)
        if record.status == record.Status.SENT:
            return record
        record.attempts += 1
        build(record).send()
        record.status = record.Status.SENT
        record.sent_at = timezone.now()
        record.error = ""
        record.save(update_fields=["status", "sent_at", "attempts", "error"])
    return record


def mail_fail(queryset: QuerySet[M], pk: int, error: str) -> M:
    """Mark a mail record as failed for good, unless it was sent meanwhile."""
    with transaction.atomic():
        record = queryset.select_for_update().get(pk=pk)
        if record.status == record.Status.PENDING:
            record.status = record.Status.FAILED
            record.error = error[:2000]
            record.save(update_fields=["status", "error"])
    return record
