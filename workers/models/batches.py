"""Batches: groups of jobs tracked together, with progress and callbacks."""

from __future__ import annotations

from django.db import models


class Batch(models.Model):
    """A group of jobs tracked together, with callbacks when all have finished."""

    class Status(models.TextChoices):
        RUNNING = "running"
        COMPLETE = "complete", "Complete (some failed or cancelled)"
        SUCCEEDED = "succeeded"
        CANCELLED = "cancelled"

    description = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING, db_index=True)
    total = models.PositiveIntegerField(default=0)
    pending = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    cancelled = models.PositiveIntegerField(default=0, help_text="Jobs that were cancelled before or while they ran.")
    sealed = models.BooleanField(default=False, help_text="No more jobs will be added; callbacks may fire.")
    on_complete = models.CharField(max_length=200, blank=True, help_text="Actor sent the batch id when all finished.")
    on_success = models.CharField(max_length=200, blank=True, help_text="Actor sent the batch id if all succeeded.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "batches"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.description} ({self.ended}/{self.total})"

    @property
    def ended(self) -> int:
        """How many of its jobs have ended, whichever way."""
        return self.succeeded + self.failed + self.cancelled

    @property
    def progress(self) -> float:
        """The ended share of the jobs, from 0.0 to 1.0."""
        return self.ended / self.total if self.total else (1.0 if self.sealed else 0.0)


class BatchJob(models.Model):
    """One job of a batch; its status changes once, so a redelivered job is not counted twice."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="jobs")
    message_id = models.CharField(max_length=64, unique=True)
    actor_name = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["batch", "status"])]

    def __str__(self) -> str:
        return f"{self.actor_name} {self.message_id} ({self.status})"
