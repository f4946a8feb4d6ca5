"""Orders and their items."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q

from orders.models.customers import Customer
from orders.models.products import Product


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        PROCESSING = "processing"
        AWAITING_PAYMENT = "awaiting_payment"
        PAID = "paid"
        PROCESSED = "processed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    total = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    payment_method_token = models.CharField(
        max_length=100, help_text="The payment provider's opaque token; card numbers are never stored."
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    failure_reason = models.TextField(blank=True)

    class Meta:
        permissions = [
            ("process_order", "Can process orders"),
            ("retry_payment", "Can retry failed payments"),
            ("cancel_order", "Can cancel orders"),
        ]

    def __str__(self) -> str:
        return f"Order #{self.pk}"


class OrderItem(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="order_items")
    quantity = models.IntegerField()
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(quantity__gt=0), name="order_item_quantity_positive")]

    def __str__(self) -> str:
        # Read by staff on the order's page: what, how many and at what price, not ids.
        return f"{self.quantity} \u00d7 {self.product.name} ({self.product.sku}) at {self.unit_price}"
