"""Customers in the admin."""

from __future__ import annotations

from django.contrib import admin

from orders.models import Customer


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["name", "email", "is_priority", "created_at"]
    list_filter = ["is_priority"]
    search_fields = ["name", "email"]
