"""The job platform's admin pages: dead letters (replay, resolve, bulk actions), job batches with their progress,
the operators' audit trail, and ``ReadOnlyAdmin``, the base of every admin of records that jobs write.

django_dramatiq's task list is hidden: nothing here fills it.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import path
from django.utils.html import format_html
from django_dramatiq.models import Task

from workers import dead_letters
from workers.dead_letter_admin import (
    CappedCountPaginator,
    DeadLetterStatusFilter,
    DistinctValuesFilter,
    bulk_action_view,
    bulk_links,
)
from workers.dead_letter_bulk import dead_letters_search
from workers.models import Batch, DeadLetter, OperatorAction
from workers.redaction import redact

# django_dramatiq's task list is filled by its AdminMiddleware, which this platform does not run
# (a database write per job); the console's history page records runs in bulk instead.
if admin.site.is_registered(Task):
    admin.site.unregister(Task)


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = [
        "failed_at",
        "actor_name",
        "queue_name",
        "reason",
        "error_shown",
        "attempts",
        "replayed_at",
        "resolved_at",
    ]
    # The status filter's parameter and the others' are those workers.dead_letter_bulk understands.
    list_filter = [
        DeadLetterStatusFilter,
        "reason",
        ("actor_name", DistinctValuesFilter),
        ("queue_name", DistinctValuesFilter),
    ]
    search_fields = ["message_id", "actor_name", "error"]
    search_help_text = "Words of the message id, actor or error, in the last 7 days; a whole message id at any age."
    readonly_fields = [field.name for field in DeadLetter._meta.fields]
    actions = ["replay"]
    # 100,000 dead letters: no second COUNT(*) of the whole table beside the filtered one, and
    # pages of 50 (rendering the rows, not the queries, is what a page of 100 spends its time on).
    show_full_result_count = False
    list_per_page = 50
    paginator = CappedCountPaginator

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Error")
    def error_shown(self, dead_letter: DeadLetter) -> str:
        return redact(dead_letter.error[:300])

    def get_search_results(self, request, queryset, search_term):
        # The same search as the bulk actions run, so "all N matching" are the rows listed.
        return dead_letters_search(queryset, search_term), False

    def get_urls(self) -> list:
        bulk = path("bulk/<str:action>/", self.admin_site.admin_view(bulk_action_view), name="workers_deadletter_bulk")
        return [bulk, *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {**(extra_context or {}), "bulk_links": bulk_links(request)})

    @admin.action(description="Replay selected jobs", permissions=["replay"])
    def replay(self, request, queryset) -> None:
        replayed, unreadable = 0, []
        already = queryset.exclude(replayed_at__isnull=True).count()
        resolved = queryset.filter(replayed_at__isnull=True, resolved_at__isnull=False).count()
        for dead_letter in queryset.filter(replayed_at__isnull=True, resolved_at__isnull=True):
            try:
                dead_letters.replay(dead_letter)
            except dead_letters.NotReplayable:
                unreadable.append(dead_letter.message_id)
            else:
                replayed += 1
        if replayed:
            self.message_user(request, f"{replayed} job(s) queued again.", messages.SUCCESS)
        if already:
            self.message_user(request, f"{already} job(s) skipped: replayed before.", messages.WARNING)
        if resolved:
            self.message_user(request, f"{resolved} job(s) skipped: marked resolved.", messages.WARNING)
        if unreadable:
            self.message_user(
                request,
                f"{len(unreadable)} job(s) skipped: the broker refused them unread ({self.reason_note(unreadable)}), "
                "so there is no message to send again.",
                messages.WARNING,
            )

    @staticmethod
    def reason_note(message_ids: list[str]) -> str:
        return ", ".join(message_ids[:5]) + (" ..." if len(message_ids) > 5 else "")

    def has_replay_permission(self, request) -> bool:
        return request.user.has_perm("workers.replay_deadletter")


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written only by jobs and the platform: visible to staff, never edited by hand (superusers included)."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(OperatorAction)
class OperatorActionAdmin(ReadOnlyAdmin):
    """The audit trail: read only, for everybody (superusers included)."""

    list_display = ["created_at", "username", "action", "target", "count"]
    list_filter = ["action", "username"]
    search_fields = ["target", "username"]
    date_hierarchy = "created_at"
    readonly_fields = ["created_at", "username", "action", "target", "count", "detail"]
    fields = readonly_fields


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    list_display = [
        "description",
        "status",
        "progress_bar",
        "total",
        "succeeded",
        "failed",
        "cancelled",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status"]
    search_fields = ["description"]
    readonly_fields = [field.name for field in Batch._meta.fields] + ["progress_bar"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Progress")
    def progress_bar(self, batch: Batch) -> str:
        return progress_bar(batch.progress)


def progress_bar(fraction: float) -> str:
    """A progress bar with its percentage, for a share done from 0.0 to 1.0 (batches, imports)."""
    percent = round(fraction * 100)
    return format_html('<progress value="{}" max="100" title="{}%"></progress> {}%', percent, percent, percent)
