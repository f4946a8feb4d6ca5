"""Mail in the admin, read-only: what was queued, to whom, whether it went and after how many attempts."""

from __future__ import annotations

from django.contrib import admin

from mail.models import Mail
from workers.admin import ReadOnlyAdmin


@admin.register(Mail)
class MailAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "key", "recipients", "status", "attempts", "sent_at"]
    list_filter = ["status"]
    search_fields = ["key"]
    date_hierarchy = "created_at"
    # The bodies may hold customer data: the list and the page show what the mail is for, not what it says.
    exclude = ["body", "html", "attachments"]

    @admin.display(description="To")
    def recipients(self, mail: Mail) -> str:
        return ", ".join(mail.to)
