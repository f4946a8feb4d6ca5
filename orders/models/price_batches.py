"""Price batches: price changes applied by one job per item."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from orders.models.products import Product


class PriceBatch(models.Model):
    """A batch of price changes, applied by one job per item and followed as one workers ``Batch``."""

    description = models.CharField(max_length=200)
    job_batch = models.OneToOneField(
        "workers.Batch", null=True, blank=True, on_delete=models.SET_NULL, related_name="price_batch"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    cursor = models.BigIntegerField(default=0, help_text="The last item queued; a resumed start goes on after it.")

    class Meta:
        verbose_name_plural = "price batches"
        permissions = [("process_pricebatch", "Can process price batches")]

    def __str__(self) -> str:
        return self.description


class PriceBatchItem(models.Model):
    """One product's new price; ``applied_at`` is set once, so a redelivered job changes nothing."""

    batch = models.ForeignKey(PriceBatch, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    new_price = models.DecimalField(max_digits=12, decimal_places=2)
    old_price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["batch", "product"], name="price_batch_item_once_per_product"),
            models.CheckConstraint(condition=Q(new_price__gte=0), name="price_batch_item_price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.product.sku} {self.product.name} \u2192 {self.new_price}"
