"""Dead letters: the jobs that failed for good, kept to be looked at and replayed."""

from __future__ import annotations

from django.db import models


class DeadLetter(models.Model):
    class Reason(models.TextChoices):
        EXHAUSTED = "exhausted", "Retries exhausted"
        DISCARDED = "discarded", "Discarded (not retryable)"
        MALFORMED = "malformed", "Malformed arguments"
        CRASHED = "crashed", "Crashed its worker every time"
        # Refused by the consumer before any actor saw it (workers/dramatiq_internals/consumers.py, workers/signing.py).
        MALFORMED_MESSAGE = "malformed_message", "Malformed message"
        OVERSIZED = "oversized", "Oversized message"
        BAD_SIGNATURE = "bad_signature", "Bad or missing signature"
        UNKNOWN_ACTOR = "unknown_actor", "Unknown actor"
        # Failed by a middleware without an exception of its own (an expired max_age, say).
        REJECTED = "rejected", "Rejected by the worker"

    message_id = models.CharField(max_length=64, unique=True)
    actor_name = models.CharField(max_length=200, db_index=True)
    queue_name = models.CharField(max_length=200)
    message = models.JSONField(help_text="The message as the broker held it, to replay it.")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    error = models.TextField()
    traceback = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=1)
    failed_at = models.DateTimeField(auto_now_add=True, db_index=True)
    replayed_at = models.DateTimeField(null=True, blank=True)
    replayed_message_id = models.CharField(max_length=64, blank=True)
    resolved_at = models.DateTimeField(
        null=True, blank=True, help_text="Marked resolved by staff: not to be replayed, hidden from the default list."
    )

    class Meta:
        ordering = ["-failed_at"]
        permissions = [("replay_deadletter", "Can replay dead letters")]
        # The list's filters, each with the list's order, so a filtered page is an index range scan.
        indexes = [
            models.Index(fields=["reason", "failed_at"], name="deadletter_reason_failed"),
            models.Index(fields=["queue_name", "failed_at"], name="deadletter_queue_failed"),
            models.Index(fields=["actor_name", "failed_at"], name="deadletter_actor_failed"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_name} {self.message_id} ({self.reason})"
