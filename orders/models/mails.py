"""E-mails to customers, each sent once."""

from __future__ import annotations

from django.db import models


class EmailDelivery(models.Model):
    """One e-mail to send, exactly once: the key names what it is for, the status says if it went."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"

    key = models.CharField(max_length=200, unique=True, help_text="What the mail is for, e.g. order-confirmed:42.")
    to = models.EmailField()
    subject = models.CharField(max_length=200)
    body = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "e-mail deliveries"

    def __str__(self) -> str:
        return self.key
