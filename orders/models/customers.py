"""Customers: who orders."""

from __future__ import annotations

from django.db import models


class Customer(models.Model):
    email = models.EmailField(unique=True)
    name = models.CharField(max_length=200)
    is_priority = models.BooleanField(default=False, help_text="Priority customers' orders go to the urgent queue.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return self.name
