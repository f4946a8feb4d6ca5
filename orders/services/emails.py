"""E-mail deliveries: queue a mail once per purpose, and send it once."""

from __future__ import annotations

from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone

from orders.models import EmailDelivery
from workers.enqueue import enqueue_on_commit


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
    """Send the mail unless it was sent already.

    The row stays locked while the mail goes out, so a second delivery of the job waits and
    then finds it sent. A crash after the SMTP server accepted the mail and before the commit
    can still send it twice: SMTP has no idempotency key.
    """
    with transaction.atomic():
        delivery = EmailDelivery.objects.select_for_update().get(pk=delivery_id)
        if delivery.status == EmailDelivery.Status.SENT:
            return delivery
        delivery.attempts += 1
        EmailMessage(subject=delivery.subject, body=delivery.body, to=[delivery.to]).send()
        delivery.status = EmailDelivery.Status.SENT
        delivery.sent_at = timezone.now()
        delivery.error = ""
        delivery.save(update_fields=["status", "sent_at", "attempts", "error"])
    return delivery


def email_fail(*, delivery_id: int, error: str) -> EmailDelivery:
    """Mark a mail as failed for good (its retries are exhausted)."""
    with transaction.atomic():
        delivery = EmailDelivery.objects.select_for_update().get(pk=delivery_id)
        if delivery.status == EmailDelivery.Status.PENDING:
            delivery.status = EmailDelivery.Status.FAILED
            delivery.error = error[:2000]
            delivery.save(update_fields=["status", "error"])
    return delivery
