"""Products: what is sold, at which price, with how much in stock."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class Product(models.Model):
    sku = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=12, decimal_places=2)
    stock = models.IntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(stock__gte=0), name="product_stock_not_negative"),
            models.CheckConstraint(condition=Q(price__gte=0), name="product_price_not_negative"),
        ]
        permissions = [("adjust_stock", "Can adjust stock")]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"
