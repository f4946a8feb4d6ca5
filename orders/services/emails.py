"""E-mail deliveries: queue a mail once per purpose, and send it once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from django.core.mail import EmailMessage, get_connection
from django.db import models, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from orders.errors import MailBeingSent
from orders.models import EmailDelivery, Order
from workers.enqueue import actor_named, enqueue_on_commit

M = TypeVar("M", bound=models.Model)

#: How long a claim keeps other attempts off a mail; then a later attempt may take it over.
MAIL_CLAIM_LEASE = timedelta(seconds=60)
#: The SMTP socket timeout, in seconds: well inside the lease, so a live send ends before it lapses.
MAIL_SEND_TIMEOUT = 20

SEND_EMAIL = actor_named("send_email")


def queue_email(*, key: str, to: str, subject: str, body: str) -> EmailDelivery:
    """Record the mail and send it after commit; the same key never queues a second mail."""
    delivery, created = EmailDelivery.objects.get_or_create(
        key=key, defaults={"to": to, "subject": subject[:200], "body": body}
    )
    if created:
        enqueue_on_commit(SEND_EMAIL, delivery.pk)
    return delivery


def customer_mail(order: Order, *, key: str, subject: str, text: str) -> EmailDelivery:
    """Queue a mail to the order's customer, greeted by name; the same key never queues a second."""
    return queue_email(
        key=key, to=order.customer.email, subject=subject, body=f"Hello {order.customer.name},\n\n{text}\n"
    )


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
    ``error``: e-mail deliveries and report mails. Claim, send, mark, with no lock held while
    the mail goes out: the claim is one conditional update that stamps ``sent_at`` (while the
    status is not "sent", that is when the latest attempt began), so a second delivery of the
    job finds the mail sent, or claimed and raises MailBeingSent to be retried. A claim lapses
    after ``MAIL_CLAIM_LEASE``, so the mail of a worker that died mid-send goes out on a later
    attempt; a send that fails gives its claim back at once. A crash after the SMTP server
    accepted the mail and before it is marked can still send it twice: SMTP has no
    idempotency key.
    """
    model = queryset.model
    claimed_at = timezone.now()
    claimed = (
        model.objects.filter(Q(sent_at__isnull=True) | Q(sent_at__lt=claimed_at - MAIL_CLAIM_LEASE), pk=pk)
        .exclude(status=model.Status.SENT)
        .update(sent_at=claimed_at, attempts=F("attempts") + 1)
    )
    record = queryset.get(pk=pk)
    if not claimed:
        if record.status == model.Status.SENT:
            return record
        raise MailBeingSent(
            f"{model._meta.verbose_name} {pk} is being sent by an attempt that began at {record.sent_at}"
        )
    try:
        email = build(record)
        email.connection = email.connection or get_connection(timeout=MAIL_SEND_TIMEOUT)
        email.send()
    except BaseException:
        model.objects.filter(pk=pk, sent_at=claimed_at).exclude(status=model.Status.SENT).update(sent_at=None)
        raise
    record.status, record.sent_at, record.error = model.Status.SENT, timezone.now(), ""
    model.objects.filter(pk=pk).update(status=record.status, sent_at=record.sent_at, error="")
    return record


def mail_fail(queryset: QuerySet[M], pk: int, error: str) -> M:
    """Mark a mail record as failed for good, unless it was sent meanwhile (its claim, if any, is dropped)."""
    with transaction.atomic():
        record = queryset.select_for_update().get(pk=pk)
        if record.status == record.Status.PENDING:
            record.status = record.Status.FAILED
            record.error = error[:2000]
            record.sent_at = None
            record.save(update_fields=["status", "error", "sent_at"])
    return record
