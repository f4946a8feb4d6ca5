"""Reports: one stored report per type and calendar day (its mail is a ``mail.Mail``, keyed by the report)."""

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
