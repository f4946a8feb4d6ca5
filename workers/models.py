"""Platform records: dead letters, the jobs that failed for good, kept to be looked at and replayed."""

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

    class Meta:
        ordering = ["-failed_at"]
        permissions = [("replay_deadletter", "Can replay dead letters")]

    def __str__(self) -> str:
        return f"{self.actor_name} {self.message_id} ({self.reason})"


class Batch(models.Model):
    """A group of jobs tracked together, with callbacks when all have finished."""

    class Status(models.TextChoices):
        RUNNING = "running"
        COMPLETE = "complete", "Complete (some failed)"
        SUCCEEDED = "succeeded"

    description = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING, db_index=True)
    total = models.PositiveIntegerField(default=0)
    pending = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    sealed = models.BooleanField(default=False, help_text="No more jobs will be added; callbacks may fire.")
    on_complete = models.CharField(max_length=200, blank=True, help_text="Actor sent the batch id when all finished.")
    on_success = models.CharField(max_length=200, blank=True, help_text="Actor sent the batch id if all succeeded.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "batches"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.description} ({self.succeeded + self.failed}/{self.total})"

    @property
    def progress(self) -> float:
        """The finished share of the jobs, from 0.0 to 1.0."""
        return (self.succeeded + self.failed) / self.total if self.total else (1.0 if self.sealed else 0.0)


class BatchJob(models.Model):
    """One job of a batch; its status changes once, so a redelivered job is not counted twice."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="jobs")
    message_id = models.CharField(max_length=64, unique=True)
    actor_name = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["batch", "status"])]

    def __str__(self) -> str:
        return f"{self.actor_name} {self.message_id} ({self.status})"


class OutboxMessage(models.Model):
    """A job written in the same transaction as the rows it is about, kept until the broker has it."""

    message = models.JSONField()
    delay = models.PositiveIntegerField(null=True, blank=True, help_text="In milliseconds.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.message.get('actor_name')} {self.message.get('message_id')}"
