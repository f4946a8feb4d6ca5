"""Reports: one stored report per type and calendar day, and the mail that sends it once."""

from __future__ import annotations

from django.db import models


class Report(models.Model):
    """The figures of one calendar day, computed by a job; the unique constraint makes it one per day."""

    class Type(models.TextChoices):
        DAILY = "daily"

    type = models.CharField(max_length=20, choices=Type.choices, default=Type.DAILY)
    date = models.DateField(help_text="The calendar day in the configured time zone.")
    data = models.JSONField(help_text="The figures; amounts are decimal strings.")
    generated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-date", "type"]
        constraints = [models.UniqueConstraint(fields=["type", "date"], name="report_once_per_type_and_date")]
        permissions = [("regenerate_report", "Can regenerate reports")]

    def __str__(self) -> str:
        return f"{self.get_type_display()} report {self.date.isoformat()}"


class ReportMail(models.Model):
    """The mail of one report, sent once: the key names the report, the status says if it went."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"

    key = models.CharField(max_length=200, unique=True, help_text="e.g. report-mailed:daily:2026-11-27")
    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="mails")
    recipients = models.JSONField(help_text="The addresses when the mail was queued.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.key
