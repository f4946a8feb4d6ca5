"""Datasets in the admin: sweeps over every order, started and resumed as jobs."""

from __future__ import annotations

from django.contrib import admin, messages

from orders.models import Dataset
from orders.services.datasets import dataset_resume, dataset_start
from workers.admin import progress_bar


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    """A sweep over every order, started on save (with the run_dataset permission), one chunk per job."""

    list_display = ["description", "operation", "status", "progress_bar", "processed", "total", "finished_at"]
    list_filter = ["status", "operation"]
    readonly_fields = ["status", "progress_bar", "total", "processed", "cursor", "created_at", "finished_at"]
    actions = ["resume_datasets"]

    def get_fields(self, request, obj=None):
        return (
            ["description", "operation", "chunk_size"]
            if obj is None
            else ["description", "operation"] + [*self.readonly_fields]
        )

    def has_add_permission(self, request) -> bool:
        return request.user.has_perm("orders.run_dataset")

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj: Dataset, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        dataset_start(dataset_id=obj.pk)

    @admin.action(description="Resume selected datasets after their last chunk", permissions=["run"])
    def resume_datasets(self, request, queryset) -> None:
        resumed = [pk for pk in queryset.values_list("pk", flat=True) if dataset_resume(dataset_id=pk)]
        self.message_user(request, f"{len(resumed)} dataset(s) resumed after their last committed chunk.")
        if len(resumed) < queryset.count():
            skipped = queryset.count() - len(resumed)
            self.message_user(request, f"{skipped} dataset(s) skipped: not started or completed.", messages.WARNING)

    def has_run_permission(self, request) -> bool:
        return request.user.has_perm("orders.run_dataset")

    @admin.display(description="Progress")
    def progress_bar(self, dataset: Dataset) -> str:
        return progress_bar(dataset.progress)
