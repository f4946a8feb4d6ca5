"""Product imports from CSV files, and the errors of their rows."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Import(models.Model):
    """A products CSV uploaded to create or update products by sku, and how far its job got.

    The counters and the resume point are saved with each chunk of products, in the same
    transaction, so a job that dies resumes after the last chunk it committed.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled", "Cancelled (can be resumed)"

    file = models.FileField(upload_to="imports/%Y/%m/%d/")
    original_name = models.CharField(
        "file", max_length=255, blank=True, help_text="The file's name as uploaded; storage may rename its copy."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    dry_run = models.BooleanField(default=False, help_text="Check every row but write no product.")
    total_rows = models.PositiveIntegerField(
        "rows", null=True, blank=True, help_text="Rows in the file, known once it has been read."
    )
    processed_rows = models.PositiveIntegerField("rows done", default=0)
    created_count = models.PositiveIntegerField("created", default=0)
    updated_count = models.PositiveIntegerField("updated", default=0)
    invalid_rows = models.PositiveIntegerField("rows skipped", default=0, help_text="Rows with errors are skipped.")
    error_count = models.PositiveIntegerField(
        "errors", default=0, help_text="Every error found is counted; the first 1,000 are kept."
    )
    resume_offset = models.PositiveBigIntegerField(
        default=0, help_text="Bytes of the file committed so far; a retried job reads on from here."
    )
    resume_row = models.PositiveIntegerField(default=0, help_text="The number of the last row committed so far.")
    failure_message = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        permissions = [("run_import", "Can run product imports")]

    def __str__(self) -> str:
        return f"Import #{self.pk}"

    @property
    def progress(self) -> float:
        """The processed share of the rows, from 0.0 to 1.0."""
        if self.total_rows:
            return self.processed_rows / self.total_rows
        return 1.0 if self.status == self.Status.COMPLETED else 0.0


class ImportRowError(models.Model):
    """A problem with one row (or one value) of an import's file; that row was skipped."""

    product_import = models.ForeignKey(Import, on_delete=models.CASCADE, related_name="row_errors")
    row = models.PositiveIntegerField(help_text="The row's number in the file, the header being row 1.")
    column = models.CharField(max_length=64, blank=True)
    message = models.CharField(max_length=300)

    class Meta:
        ordering = ["row", "pk"]

    def __str__(self) -> str:
        return f"row {self.row} {self.column}: {self.message}"
