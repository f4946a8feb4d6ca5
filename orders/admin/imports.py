"""Product imports in the admin: upload, progress, row errors, resume."""

from __future__ import annotations

from pathlib import PurePath

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from orders.forms import ImportForm
from orders.models import Import, ImportRowError
from orders.product_csv import sample_csv
from orders.services.imports import import_resume, import_start
from workers.admin import progress_bar


class ImportRowErrorInline(admin.TabularInline):
    model = ImportRowError
    extra = 0
    can_delete = False
    fields = ["row", "column", "message"]
    readonly_fields = fields
    verbose_name_plural = "row errors (the first 1,000)"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        # Row errors are part of their import: who may see the import sees them.
        return request.user.has_perm("orders.view_import") or request.user.has_perm("orders.run_import")


def _count(field: str, label: str):
    """A count of the import shown with thousands separators, sorted by its field."""

    @admin.display(description=label, ordering=field)
    def shown(self, product_import: Import) -> str:
        value = getattr(product_import, field)
        return "-" if value is None else f"{value:,}"

    return shown


@admin.register(Import)
class ImportAdmin(admin.ModelAdmin):
    """Upload a products CSV (with the run_import permission) and follow its job; nothing is edited later."""

    form = ImportForm
    list_display = [
        "id",
        "file_name",
        "status",
        "dry_run",
        "progress",
        "rows_done",
        "rows",
        "created",
        "updated",
        "skipped",
        "errors",
        "failure",
        "created_by",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "dry_run"]
    list_select_related = ["created_by"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "file_name",
        "status",
        "dry_run",
        "progress",
        "rows",
        "rows_done",
        "created",
        "updated",
        "skipped",
        "errors",
        "failure_message",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    ]
    inlines = [ImportRowErrorInline]
    actions = ["resume_imports"]

    rows = _count("total_rows", "rows")
    rows_done = _count("processed_rows", "rows done")
    created = _count("created_count", "created")
    updated = _count("updated_count", "updated")
    skipped = _count("invalid_rows", "rows skipped")
    errors = _count("error_count", "errors")

    def get_urls(self):
        sample = path("sample.csv", self.admin_site.admin_view(self.sample_view), name="orders_import_sample")
        return [sample, *super().get_urls()]

    def sample_view(self, request) -> HttpResponse:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        response = HttpResponse(sample_csv(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="products-sample.csv"'
        return response

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        formfield = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "file":
            # The picker offers .csv files only; the form still checks what arrives.
            formfield.widget.attrs["accept"] = ".csv,text/csv"
            formfield.help_text = format_html(
                '{} <a href="{}" download>Download a sample file</a>.',
                ImportForm._meta.help_texts["file"],
                reverse("admin:orders_import_sample"),
            )
        return formfield

    def get_fields(self, request, obj=None):
        return ["file", "dry_run"] if obj is None else self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def has_add_permission(self, request) -> bool:
        return request.user.has_perm("orders.run_import")

    def has_view_permission(self, request, obj=None) -> bool:
        return super().has_view_permission(request, obj) or request.user.has_perm("orders.run_import")

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj: Import, form, change: bool) -> None:
        obj.created_by = request.user
        import_start(product_import=obj)

    @admin.action(description="Resume selected imports (cancelled, or whose job was cancelled)", permissions=["run"])
    def resume_imports(self, request, queryset) -> None:
        resumed = [pk for pk in queryset.values_list("pk", flat=True) if import_resume(import_id=pk)]
        skipped = queryset.count() - len(resumed)
        self.message_user(request, f"{len(resumed)} import(s) resumed after their last committed rows.")
        if skipped:
            self.message_user(request, f"{skipped} import(s) skipped: finished or running.", messages.WARNING)

    def has_run_permission(self, request) -> bool:
        return request.user.has_perm("orders.run_import")

    @admin.display(description="File")
    def file_name(self, product_import: Import) -> str:
        if not product_import.file:
            deleted = f"(deleted {settings.IMPORT_FILE_RETENTION_DAYS} days after the import finished)"
            return f"{product_import.original_name} {deleted}".lstrip()
        return product_import.original_name or PurePath(product_import.file.name).name

    @admin.display(description="Progress")
    def progress(self, product_import: Import) -> str:
        return progress_bar(product_import.progress)

    @admin.display(description="Failure")
    def failure(self, product_import: Import) -> str:
        return Truncator(product_import.failure_message).chars(120)
