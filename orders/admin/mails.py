"""E-mail deliveries in the admin, read-only."""

from __future__ import annotations

from django.contrib import admin

from orders.models import EmailDelivery
from workers.admin import ReadOnlyAdmin


@admin.register(EmailDelivery)
class EmailDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "key", "status", "attempts", "sent_at"]
    list_filter = ["status"]
    search_fields = ["key"]
    exclude = ["body"]
