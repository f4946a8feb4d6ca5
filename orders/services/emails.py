"""Mail to customers: queued once per purpose through the mail app, greeted by name."""

from __future__ import annotations

from mail.models import Mail
from mail.services import queue_mail
from orders.models import Order


def customer_mail(order: Order, *, key: str, subject: str, text: str) -> Mail:
    """Queue a mail to the order's customer, greeted by name; the same key never queues a second."""
    return queue_mail(
        key=key, to=[order.customer.email], subject=subject, body=f"Hello {order.customer.name},\n\n{text}\n"
    )
