"""Orders in the admin: items editable until charged, processing and cancelling queued after commit, payments."""

from __future__ import annotations

from django.contrib import admin, messages

from orders.forms import OrderItemForm
from orders.models import Order, OrderItem, Payment
from orders.services.datasets import order_totals_recompute
from orders.services.orders import QueueOutcome, order_cancel, order_queue_processing_outcome
from orders.services.payments import payment_queue_retry
from workers.admin import ReadOnlyAdmin


class OrderItemInline(admin.TabularInline):
    model = OrderItem
    form = OrderItemForm
    extra = 0
    autocomplete_fields = ["product"]

    verbose_name = "item"

    def get_extra(self, request, obj=None, **kwargs) -> int:
        return 1 if obj is None else 0

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("product")

    # Items change while nothing was charged for them: a pending order, or one that failed for stock.
    def has_add_permission(self, request, obj=None) -> bool:
        return _items_open(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return _items_open(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return _items_open(obj) and super().has_delete_permission(request, obj)


def _items_open(order: Order | None) -> bool:
    if order is None or order.status == Order.Status.PENDING:
        return True
    return order.status == Order.Status.FAILED and not order.payments.exists()


class PaymentInline(admin.TabularInline):
    model = Payment
    extra = 0
    can_delete = False
    fields = ["status", "amount", "attempts", "failure_code", "gateway_reference", "updated_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["id", "customer", "status", "total", "created_at", "processed_at", "failure_reason"]
    list_filter = ["status", "customer__is_priority", "created_at"]
    search_fields = ["=id", "customer__email", "customer__name"]
    date_hierarchy = "created_at"
    list_select_related = ["customer"]
    readonly_fields = ["status", "total", "processed_at", "failure_reason", "created_at"]
    autocomplete_fields = ["customer"]
    inlines = [OrderItemInline, PaymentInline]
    actions = ["process_orders", "retry_failed_payments", "cancel_orders"]

    @admin.action(description="Process selected orders (pending, or failed for stock)", permissions=["process"])
    def process_orders(self, request, queryset) -> None:
        outcome = order_queue_processing_outcome(order_ids=list(queryset.values_list("pk", flat=True)))
        self._report(request, outcome, "order(s) queued for processing", "Not processed")

    @admin.action(description="Retry failed payments", permissions=["retry_payment"])
    def retry_failed_payments(self, request, queryset) -> None:
        outcome = payment_queue_retry(order_ids=list(queryset.values_list("pk", flat=True)))
        self._report(request, outcome, "payment(s) queued for another charge", "Not retried")

    @admin.action(
        description="Cancel selected orders (not shipped; stock back, payment refunded)", permissions=["cancel"]
    )
    def cancel_orders(self, request, queryset) -> None:
        outcome = order_cancel(order_ids=list(queryset.values_list("pk", flat=True)))
        self._report(
            request, outcome, "order(s) cancelled: stock released, payments reversed, customers told", "Not cancelled"
        )

    def has_cancel_permission(self, request) -> bool:
        return request.user.has_perm("orders.cancel_order")

    def save_related(self, request, form, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        # The total is the items' worth from the start, not from when the order is processed.
        order_totals_recompute([form.instance.pk])

    def has_delete_permission(self, request, obj=None) -> bool:
        # Orders keep their audits and payments for good: a shop cancels an order, it never deletes one.
        return False

    def _report(self, request, outcome: QueueOutcome, done: str, skipped: str) -> None:
        # A green message only for work queued; every order left alone is named, with its reason.
        if outcome.queued:
            self.message_user(request, f"{len(outcome.queued)} {done}.", messages.SUCCESS)
        if outcome.skipped:
            named = list(outcome.skipped.items())
            reasons = "; ".join(f"order #{pk}: {reason}" for pk, reason in named[:10])
            more = f" and {len(named) - 10} more" if len(named) > 10 else ""
            self.message_user(request, f"{skipped}: {reasons}{more}.", messages.WARNING)

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        formfield = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "payment_method_token":
            formfield.help_text = (
                "The payment provider's opaque token; card numbers are never stored. After a decline, "
                "'Retry failed payments' charges the token saved here, as a new attempt. A payment whose "
                "outcome is unknown is retried with the token it was first sent with, since it may have been charged."
            )
        return formfield

    def has_process_permission(self, request) -> bool:
        return request.user.has_perm("orders.process_order")

    def has_retry_payment_permission(self, request) -> bool:
        return request.user.has_perm("orders.retry_payment")


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ["id", "order", "status", "amount", "attempts", "failure_code", "updated_at"]
    list_filter = ["status"]
    search_fields = ["=order__id", "gateway_reference"]
    exclude = ["method_token", "idempotency_key"]
