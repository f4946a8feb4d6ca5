"""Payments of orders, and the sandbox gateway's own ledger."""

from __future__ import annotations

from django.db import models

from orders.models.orders import Order


class Payment(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        CHARGED = "charged"
        INSUFFICIENT_FUNDS = "insufficient_funds"
        CARD_EXPIRED = "card_expired"
        FAILED = "failed"
        VOIDED = "voided", "Voided (order cancelled, nothing taken)"
        REFUNDED = "refunded", "Refunded (order cancelled)"

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    method_token = models.CharField(max_length=100)
    idempotency_key = models.CharField(max_length=100, unique=True)
    gateway_reference = models.CharField(max_length=100, blank=True)
    failure_code = models.CharField(max_length=50, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Payment #{self.pk} ({self.status})"


class SandboxCharge(models.Model):
    """The sandbox payment gateway's own ledger: one row per idempotency key, as a provider keeps it."""

    idempotency_key = models.CharField(max_length=100, unique=True)
    token = models.CharField(max_length=100)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    reference = models.CharField(max_length=100, blank=True)
    calls = models.PositiveIntegerField(default=0)
    charged = models.BooleanField(default=False, help_text="Money is held: charged and not refunded.")
    refunded = models.BooleanField(default=False)
    voided = models.BooleanField(default=False, help_text="Closed before any charge: the key charges nothing.")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.idempotency_key
