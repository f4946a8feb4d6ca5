"""The outbox: jobs written in a transaction, kept until the broker has them."""

from __future__ import annotations

from django.db import models


class OutboxMessage(models.Model):
    """A job written in the same transaction as the rows it is about, kept until the broker has it."""

    message = models.JSONField()
    delay = models.PositiveIntegerField(null=True, blank=True, help_text="In milliseconds.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.message.get('actor_name')} {self.message.get('message_id')}"
