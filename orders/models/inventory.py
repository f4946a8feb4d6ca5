"""Stock changes: the audit of each one, and the adjustments asked for from the admin."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from orders.models.orders import Order
from orders.models.products import Product


class InventoryAudit(models.Model):
    """One change of a product's stock. The unique key makes a replayed job unable to write it twice.

    An order's reservations and releases are keyed by order, round and product: an order may
    reserve again after its stock was released (re-processed after a restock, a payment retried).

    Imports write one row per product whose stock they change, tens of thousands a chunk, so the
    table carries only the indexes its readers use: the product's (its audits, the admin's
    search), the order's with the reason (an order's reservations and releases), and the unique
    key; the last two are partial, as most rows (every import's) have no order and no key.
    Neither the product nor the order is a foreign key in the database, which would queue a
    check of every row (NULL orders included) for the commit, and cost an import about as much
    as writing the rows: both are PROTECTed by the ORM and never deleted (a shop cancels an
    order, it does not delete it), and every audit is written with the product it changes,
    under that product's lock or in the statement that writes it, and with its order locked.
    """

    class Reason(models.TextChoices):
        ORDER_RESERVATION = "order_reservation"
        RELEASE = "release", "Release (order failed or cancelled)"
        ADJUSTMENT = "adjustment"
        RESTOCK = "restock"
        IMPORT = "import"

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="audits", db_constraint=False)
    change = models.IntegerField()
    stock_after = models.IntegerField()
    order = models.ForeignKey(
        Order,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="audits",
        db_index=False,
        db_constraint=False,
    )
    reason = models.CharField(max_length=40, choices=Reason.choices)
    note = models.CharField(max_length=200, blank=True)
    # NULL, not "", for no key: the unique index leaves out the rows that have none.
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    processed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["order", "reason"], condition=Q(order__isnull=False), name="audit_order_reason"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="audit_idempotency_key_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product_id} {self.change:+d} ({self.reason})"


class StockAdjustment(models.Model):
    """A change of stock asked for from the admin, and what became of it: the job writes the outcome."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        DONE = "done"
        REFUSED = "refused"

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="adjustments")
    change = models.IntegerField()
    reason = models.CharField(max_length=40, choices=InventoryAudit.Reason.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    outcome = models.CharField(max_length=300, blank=True, help_text="Why it was refused, or the stock it left.")
    audit = models.OneToOneField(
        InventoryAudit, null=True, blank=True, on_delete=models.PROTECT, related_name="adjustment"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=~Q(change=0), name="stock_adjustment_change_not_zero")]

    def __str__(self) -> str:
        return f"{self.product_id} {self.change:+d} ({self.status})"
