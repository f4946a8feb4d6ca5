"""Mail: one record per e-mail, whatever app sends it, so that each goes out exactly once."""

from __future__ import annotations

from django.db import models


class Mail(models.Model):
    """One e-mail to send, exactly once: the key names what it is for, the status says whether it went.

    The message is stored whole when it is queued (addresses, subject, text and HTML bodies, text
    attachments), so that sending it needs nothing but this row, and a retry sends what was queued.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"

    key = models.CharField(max_length=200, unique=True, help_text="What the mail is for, e.g. order-confirmed:42.")
    to = models.JSONField(help_text="The recipients' addresses.")
    subject = models.CharField(max_length=200)
    body = models.TextField(help_text="The text body.")
    html = models.TextField(blank=True, help_text="The same as HTML, if the mail has an HTML body.")
    attachments = models.JSONField(
        default=list, blank=True, help_text="Text files sent with it: each a filename, a content and a MIME type."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(
        null=True, blank=True, help_text="When it was sent; while pending, when the latest attempt began."
    )

    class Meta:
        verbose_name_plural = "mail"

    def __str__(self) -> str:
        return self.key
