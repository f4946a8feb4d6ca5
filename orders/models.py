"""Orders, customers, products and stock audits, payments, e-mail deliveries, imports, price batches, datasets."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q


class Customer(models.Model):
    email = models.EmailField(unique=True)
    name = models.CharField(max_length=200)
    is_priority = models.BooleanField(default=False, help_text="Priority customers' orders go to the urgent queue.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return self.name


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
        return f"{self.quantity} x {self.product_id}"


class InventoryAudit(models.Model):
    """One change of a product's stock. The unique key makes a replayed job unable to write it twice.

    An order's reservations and releases are keyed by order, round and product: an order may
    reserve again after its stock was released (re-processed after a restock, a payment retried).
    """

    class Reason(models.TextChoices):
        ORDER_RESERVATION = "order_reservation"
        RELEASE = "release", "Release (order failed or cancelled)"
        ADJUSTMENT = "adjustment"
        RESTOCK = "restock"
        IMPORT = "import"

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="audits")
    change = models.IntegerField()
    stock_after = models.IntegerField()
    order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.PROTECT, related_name="audits")
    reason = models.CharField(max_length=40, choices=Reason.choices)
    note = models.CharField(max_length=200, blank=True)
    idempotency_key = models.CharField(max_length=100, null=True, blank=True, unique=True)
    processed_at = models.DateTimeField(auto_now_add=True)

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


class EmailDelivery(models.Model):
    """One e-mail to send, exactly once: the key names what it is for, the status says if it went."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"

    key = models.CharField(max_length=200, unique=True, help_text="What the mail is for, e.g. order-confirmed:42.")
    to = models.EmailField()
    subject = models.CharField(max_length=200)
    body = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "e-mail deliveries"

    def __str__(self) -> str:
        return self.key


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


class Import(models.Model):
    """A products CSV uploaded to create or update products by sku, and how far its job got.

    The counters and the resume point are saved with each chunk of products, in the same
    transaction, so a job that dies resumes after the last chunk it committed.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled", "Cancelled (can be resumed)"

    file = models.FileField(upload_to="imports/%Y/%m/%d/")
    original_name = models.CharField(
        "file", max_length=255, blank=True, help_text="The file's name as uploaded; storage may rename its copy."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    dry_run = models.BooleanField(default=False, help_text="Check every row but write no product.")
    total_rows = models.PositiveIntegerField(
        "rows", null=True, blank=True, help_text="Rows in the file, known once it has been read."
    )
    processed_rows = models.PositiveIntegerField("rows done", default=0)
    created_count = models.PositiveIntegerField("created", default=0)
    updated_count = models.PositiveIntegerField("updated", default=0)
    invalid_rows = models.PositiveIntegerField("rows skipped", default=0, help_text="Rows with errors are skipped.")
    error_count = models.PositiveIntegerField(
        "errors", default=0, help_text="Every error found is counted; the first 1,000 are kept."
    )
    resume_offset = models.PositiveBigIntegerField(
        default=0, help_text="Bytes of the file committed so far; a retried job reads on from here."
    )
    resume_row = models.PositiveIntegerField(default=0, help_text="The number of the last row committed so far.")
    failure_message = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        permissions = [("run_import", "Can run product imports")]

    def __str__(self) -> str:
        return f"Import #{self.pk}"

    @property
    def progress(self) -> float:
        """The processed share of the rows, from 0.0 to 1.0."""
        if self.total_rows:
            return self.processed_rows / self.total_rows
        return 1.0 if self.status == self.Status.COMPLETED else 0.0


class ImportRowError(models.Model):
    """A problem with one row (or one value) of an import's file; that row was skipped."""

    product_import = models.ForeignKey(Import, on_delete=models.CASCADE, related_name="row_errors")
    row = models.PositiveIntegerField(help_text="The row's number in the file, the header being row 1.")
    column = models.CharField(max_length=64, blank=True)
    message = models.CharField(max_length=300)

    class Meta:
        ordering = ["row", "pk"]

    def __str__(self) -> str:
        return f"row {self.row} {self.column}: {self.message}"


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
        return f"{self.product_id} -> {self.new_price}"


#: The most rows one job of a dataset may take: a chunk is one transaction.
DATASET_CHUNK_MAX = 10_000


class Dataset(models.Model):
    """A sweep over every order, one chunk per job, each job queueing the next (job splitting)."""

    class Operation(models.TextChoices):
        RECOMPUTE_TOTALS = "recompute_totals", "Recompute order totals from their items"

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        COMPLETED = "completed"
        CANCELLED = "cancelled", "Cancelled (can be resumed)"

    description = models.CharField(max_length=200)
    operation = models.CharField(max_length=40, choices=Operation.choices, default=Operation.RECOMPUTE_TOTALS)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    chunk_size = models.PositiveIntegerField(
        default=1000,
        validators=[MinValueValidator(1), MaxValueValidator(DATASET_CHUNK_MAX)],
        help_text=f"Rows per job, 1 to {DATASET_CHUNK_MAX:,}.",
    )
    total = models.PositiveIntegerField(default=0, help_text="Rows to visit, counted when it started.")
    processed = models.PositiveIntegerField(default=0)
    cursor = models.BigIntegerField(default=0, help_text="The last row id done; the next chunk starts after it.")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        permissions = [("run_dataset", "Can run datasets")]
        constraints = [
            models.CheckConstraint(
                condition=Q(chunk_size__gte=1, chunk_size__lte=DATASET_CHUNK_MAX), name="dataset_chunk_size_in_range"
            )
        ]

    def __str__(self) -> str:
        return self.description

    @property
    def progress(self) -> float:
        if self.status == self.Status.COMPLETED:
            return 1.0
        return min(self.processed / self.total, 1.0) if self.total else 0.0
