"""The operator console's records: job history, per-minute metrics, paused queues and schedules, and the audit trail."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class JobRun(models.Model):
    """One finished run of a job, for the history page.

    Worker processes buffer these and write them in bulk (never a write per job); housekeeping
    deletes rows older than ``settings.JOB_HISTORY_DAYS``.
    """

    class Outcome(models.TextChoices):
        SUCCEEDED = "succeeded"
        RETRYING = "retrying", "Failed, will retry"
        FAILED = "failed", "Failed for good"
        CANCELLED = "cancelled"
        SKIPPED = "skipped"

    message_id = models.CharField(max_length=64, db_index=True)
    actor_name = models.CharField(max_length=200)
    queue_name = models.CharField(max_length=200)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    attempt = models.PositiveIntegerField(default=1)
    duration_ms = models.FloatField(default=0)
    error = models.TextField(blank=True)
    args_hash = models.CharField(max_length=64, blank=True, db_index=True, help_text="SHA-256 of the arguments.")
    worker = models.CharField(max_length=200, blank=True, help_text="host:pid of the worker process.")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-finished_at"]
        indexes = [
            models.Index(fields=["actor_name", "finished_at"]),
            models.Index(fields=["queue_name", "finished_at"]),
            models.Index(fields=["outcome", "finished_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.actor_name} {self.message_id} ({self.outcome})"


class JobMinute(models.Model):
    """One minute of one actor on one queue in one worker process: counts and a duration histogram.

    Each worker process writes only its own rows, so it can overwrite them with its running
    totals; the metrics page sums over workers.
    """

    minute = models.DateTimeField(db_index=True)
    actor_name = models.CharField(max_length=200)
    queue_name = models.CharField(max_length=200)
    worker = models.CharField(max_length=200)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    retried = models.PositiveIntegerField(default=0)
    cancelled = models.PositiveIntegerField(default=0)
    durations = models.JSONField(default=list, help_text="Runs per duration bucket, shortest first.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["minute", "actor_name", "queue_name", "worker"], name="job_minute_unique")
        ]

    def __str__(self) -> str:
        return f"{self.minute:%Y-%m-%d %H:%M} {self.actor_name}"


class Pause(models.Model):
    """A paused queue or recurring job. The row is the truth and survives restarts; Redis carries it to workers."""

    class Kind(models.TextChoices):
        QUEUE = "queue"
        SCHEDULE = "schedule", "Recurring job"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    name = models.CharField(max_length=200)
    paused_by = models.CharField(max_length=150, blank=True)
    paused_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "name"], name="pause_unique")]

    def __str__(self) -> str:
        return f"{self.kind} {self.name} (paused)"


class OperatorAction(models.Model):
    """An action taken from the console: who, what, on how many jobs, when.

    ``token`` is the one-time token of the form that asked for it: a second POST of the same
    form (a double click) finds it taken and changes nothing.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    username = models.CharField(max_length=150)
    action = models.CharField(max_length=100)
    target = models.CharField(max_length=300, blank=True)
    count = models.PositiveIntegerField(default=0)
    detail = models.JSONField(default=dict, blank=True)
    token = models.CharField(max_length=64, unique=True, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("view_console_queues", "Can view queues"),
            ("pause_queue", "Can pause and resume queues"),
            ("view_console_running", "Can view running jobs"),
            ("view_console_scheduled", "Can view scheduled and retrying jobs"),
            ("cancel_job", "Can cancel jobs and run them now"),
            ("view_console_history", "Can view job history"),
            ("view_console_metrics", "Can view job metrics"),
            ("view_console_schedule", "Can view recurring jobs"),
            ("manage_schedule", "Can run and pause recurring jobs"),
            ("view_console_workers", "Can view workers"),
        ]

    def __str__(self) -> str:
        return f"{self.username} {self.action} {self.target} ({self.count})"
