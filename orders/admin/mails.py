"""E-mail deliveries in the admin, read-only."""

from __future__ import annotations

from django.contrib import admin

from orders.admin.read_only import ReadOnlyAdmin
from orders.models import EmailDelivery


@admin.register(EmailDelivery)
class EmailDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "key", "status", "attempts", "sent_at"]
    list_filter = ["status"]
    search_fields = ["key"]
    exclude = ["body"]
