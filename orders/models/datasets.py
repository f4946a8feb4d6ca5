"""Datasets: sweeps over every order, a chunk per job."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

#: The most rows one job of a dataset may take: a chunk is one transaction.
DATASET_CHUNK_MAX = 10_000


class Dataset(models.Model):
    """An order sweep: one operation run over every order, one chunk per job, each job queueing the next.

    The admin and its pages call it an order sweep; the class and its table keep the name
    ``Dataset`` (renaming them would move the table and its permission for no gain in behaviour).
    """

    class Operation(models.TextChoices):
        RECOMPUTE_TOTALS = "recompute_totals", "Recompute order totals from their items"

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        COMPLETED = "completed"
        CANCELLED = "cancelled", "Cancelled (can be resumed)"

    description = models.CharField(max_length=200)
    operation = models.CharField(max_length=40, choices=Operation.choices, default=Operation.RECOMPUTE_TOTALS)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    chunk_size = models.PositiveIntegerField(
        default=1000,
        validators=[MinValueValidator(1), MaxValueValidator(DATASET_CHUNK_MAX)],
        help_text=f"Rows per job, 1 to {DATASET_CHUNK_MAX:,}.",
    )
    total = models.PositiveIntegerField(default=0, help_text="Rows to visit, counted when it started.")
    processed = models.PositiveIntegerField(default=0)
    cursor = models.BigIntegerField(default=0, help_text="The last row id done; the next chunk starts after it.")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "order sweep"
        permissions = [("run_dataset", "Can run datasets")]
        constraints = [
            models.CheckConstraint(
                condition=Q(chunk_size__gte=1, chunk_size__lte=DATASET_CHUNK_MAX), name="dataset_chunk_size_in_range"
            )
        ]

    def __str__(self) -> str:
        return self.description

    @property
    def progress(self) -> float:
        if self.status == self.Status.COMPLETED:
            return 1.0
        return min(self.processed / self.total, 1.0) if self.total else 0.0
