"""The jobs dashboard in the admin: dead letters, with a replay action behind its permission."""

from __future__ import annotations

from django.contrib import admin, messages

from workers import dead_letters
from workers.models import DeadLetter


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = ["failed_at", "actor_name", "queue_name", "reason", "error", "attempts", "replayed_at"]
    list_filter = ["reason", "actor_name", "queue_name"]
    search_fields = ["message_id", "actor_name", "error"]
    readonly_fields = [field.name for field in DeadLetter._meta.fields]
    actions = ["replay"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Replay selected jobs", permissions=["replay"])
    def replay(self, request, queryset) -> None:
        replayed = [dead_letters.replay(dead_letter) for dead_letter in queryset.filter(replayed_at__isnull=True)]
        self.message_user(request, f"{len(replayed)} job(s) queued again.", messages.SUCCESS)

    def has_replay_permission(self, request) -> bool:
        return request.user.has_perm("workers.replay_deadletter")
