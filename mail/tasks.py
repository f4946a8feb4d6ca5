"""Mail actors: each takes a mail's id, calls one service, and lets exceptions speak."""

from __future__ import annotations

import logging

import dramatiq
from django.conf import settings

from mail.models import Mail
from mail.services import mail_fail, mail_send
from workers import queues

logger = logging.getLogger(__name__)


@dramatiq.actor(queue_name=queues.MAILERS, max_retries=10)
def send_mail_exhausted(mail_id: int, error: str) -> None:
    mail_fail(mail_id=mail_id, error=error)
    logger.error("mail %s failed for good: %s", mail_id, error)


def _recipient_domain(mail_id: int) -> str:
    """The domain a mail goes to, its first recipient's (the flow limit's key: computed once per job, kept in its
    message)."""
    to = Mail.objects.filter(pk=mail_id).values_list("to", flat=True).first() or [""]
    return (to[0] if to else "").rpartition("@")[2].lower() or "unknown"


@dramatiq.actor(
    queue_name=queues.MAILERS,
    max_retries=5,
    retry_backoff=lambda count: 10 * (count + 1),
    on_retries_exhausted=send_mail_exhausted,
    # The mail provider's limits, in all and per recipient domain.
    rate=[("mail-provider", settings.EMAIL_RATE), (_recipient_domain, settings.EMAIL_RATE_PER_DOMAIN)],
)
def send_mail(mail_id: int) -> None:
    mail_send(mail_id=mail_id)


@dramatiq.actor(queue_name=queues.MAILERS, max_retries=10)
def send_email_exhausted(delivery_id: int, error: str) -> None:
    """The former name of ``send_mail_exhausted``, kept for the callbacks queued under it before mail had an app."""
    send_mail_exhausted(delivery_id, error)


@dramatiq.actor(
    queue_name=queues.MAILERS,
    max_retries=5,
    retry_backoff=lambda count: 10 * (count + 1),
    on_retries_exhausted=send_email_exhausted,
)
def send_email(delivery_id: int) -> None:
    """The former name of ``send_mail``, kept for the jobs queued under it before mail had an app.

    The e-mail deliveries moved to mail keeping their ids, so the id is the mail's. Nothing sends
    it any more; it may go once no queue, retry or dead letter holds such a message.
    """
    send_mail(delivery_id)
