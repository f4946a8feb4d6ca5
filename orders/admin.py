"""Admin for orders, products, imports, payments and e-mails, with actions that queue jobs after commit."""

from __future__ import annotations

from pathlib import PurePath

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import IS_POPUP_VAR
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count
from django.http import HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from orders.forms import (
    ImportForm,
    OrderItemForm,
    PriceBatchForm,
    PriceBatchItemForm,
    PriceChangeForm,
    StockAdjustmentForm,
)
from orders.models import (
    Customer,
    Dataset,
    EmailDelivery,
    Import,
    ImportRowError,
    InventoryAudit,
    Order,
    OrderItem,
    Payment,
    PriceBatch,
    PriceBatchItem,
    Product,
    StockAdjustment,
)
from orders.product_csv import sample_csv
from orders.services.datasets import dataset_resume, dataset_start, order_totals_recompute
from orders.services.imports import import_resume, import_start
from orders.services.inventory import stock_adjustment_request
from orders.services.orders import QueueOutcome, order_cancel, order_queue_processing_outcome
from orders.services.payments import payment_queue_retry
from orders.services.price_batches import (
    PriceBatchStarted,
    PriceOutOfRange,
    price_batch_from_products,
    price_batch_items_set,
    price_batch_queue,
    price_batch_resume,
)
from workers.admin import progress_bar
from workers.console.audit import AlreadyDone, new_token, record_action


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written only by jobs: visible to staff, never edited by hand."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["name", "email", "is_priority", "created_at"]
    list_filter = ["is_priority"]
    search_fields = ["name", "email"]


class StockAdjustmentInline(admin.TabularInline):
    """The stock adjustments asked for on a product, newest first, with what the job made of each."""

    model = StockAdjustment
    extra = 0
    can_delete = False
    fields = ["created_at", "requested_by", "change", "reason", "status", "outcome", "finished_at"]
    readonly_fields = fields
    ordering = ["-created_at", "-pk"]
    verbose_name_plural = "stock adjustments asked for"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("orders.view_product")


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["sku", "name", "price", "stock", "updated_at"]
    search_fields = ["sku", "name"]
    readonly_fields = ["stock"]
    actions = ["adjust_stock", "price_batch_from_selection"]
    inlines = [StockAdjustmentInline]

    @admin.action(description="Adjust stock of selected products", permissions=["adjust_stock"])
    def adjust_stock(self, request, queryset):
        form = StockAdjustmentForm(request.POST if "apply" in request.POST else None, products=queryset)
        if form.is_valid():
            adjustments = stock_adjustment_request(
                product_ids=list(queryset.values_list("pk", flat=True)),
                change=form.cleaned_data["quantity_change"],
                reason=form.cleaned_data["reason"],
                requested_by_id=request.user.pk,
            )
            self.message_user(
                request,
                f"{len(adjustments)} stock adjustment(s) queued; each product's page shows whether it was done.",
                messages.SUCCESS,
            )
            return None
        return TemplateResponse(
            request,
            "admin/orders/product/adjust_stock.html",
            {
                **self.admin_site.each_context(request),
                "title": "Adjust stock",
                "form": form,
                "products": queryset,
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
                "opts": self.model._meta,
            },
        )

    def has_adjust_stock_permission(self, request) -> bool:
        return request.user.has_perm("orders.adjust_stock")

    @admin.action(description="Make a price batch of selected products", permissions=["price_batch"])
    def price_batch_from_selection(self, request, queryset):
        """One new price, or a percentage change, for every selected product, as a new price batch.

        The confirmation page carries the selection as the list page sent it: the ids of one page,
        or "all that match" with the list's filters in its address. Never a field per product,
        so any number of products fits in one POST.
        """
        count = queryset.count()
        confirmed = "create" in request.POST
        form = PriceChangeForm(request.POST if confirmed else None, initial={"token": new_token()})
        if confirmed and form.is_valid():
            if request.POST.get("count") != str(count):
                form.add_error(None, f"The selection has changed: it is {count:,} products now. Check and confirm.")
            else:
                response = self._price_batch_create(request, queryset, form, count)
                if response is not None:
                    return response
        sample = list(queryset.order_by("sku")[:10])
        return TemplateResponse(
            request,
            "admin/orders/product/price_batch.html",
            {
                **self.admin_site.each_context(request),
                "title": "Make a price batch",
                "form": form,
                "count": count,
                "count_shown": f"{count:,}",
                "sample": sample,
                "more": f"{count - len(sample):,}" if count > len(sample) else "",
                "select_across": request.POST.get("select_across") == "1",
                "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
                "opts": self.model._meta,
            },
        )

    def _price_batch_create(self, request, queryset, form: PriceChangeForm, count: int) -> HttpResponse | None:
        data = form.cleaned_data
        by_price = data["change"] == "price"
        try:
            with transaction.atomic():
                record_action(request, "price_batch_from_selection", count=count, target=data["description"], detail={})
                batch = price_batch_from_products(
                    description=data["description"],
                    products=queryset,
                    new_price=data["new_price"] if by_price else None,
                    percent=None if by_price else data["percent"],
                    created_by_id=request.user.pk,
                )
        except AlreadyDone:
            self.message_user(request, "This form was sent already; nothing was done again.", messages.WARNING)
            return HttpResponseRedirect(request.get_full_path())
        except PriceOutOfRange as error:
            form.add_error("percent", f"Too high: {error}.")
            return None
        self.message_user(
            request,
            f"Price batch “{batch}” made with {count:,} products. Check the new prices below, "
            "then process it from the list of price batches.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:orders_pricebatch_change", args=[batch.pk]))

    def has_price_batch_permission(self, request) -> bool:
        return request.user.has_perm("orders.add_pricebatch")


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


@admin.register(InventoryAudit)
class InventoryAuditAdmin(ReadOnlyAdmin):
    list_display = ["processed_at", "product", "change", "stock_after", "reason", "order"]
    list_filter = ["reason"]
    search_fields = ["product__sku"]


@admin.register(EmailDelivery)
class EmailDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "key", "status", "attempts", "sent_at"]
    list_filter = ["status"]
    search_fields = ["key"]
    exclude = ["body"]


class ImportRowErrorInline(admin.TabularInline):
    model = ImportRowError
    extra = 0
    can_delete = False
    fields = ["row", "column", "message"]
    readonly_fields = fields
    verbose_name_plural = "row errors (the first 1,000)"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        # Row errors are part of their import: who may see the import sees them.
        return request.user.has_perm("orders.view_import") or request.user.has_perm("orders.run_import")


def _count(field: str, label: str):
    """A count of the import shown with thousands separators, sorted by its field."""

    @admin.display(description=label, ordering=field)
    def shown(self, product_import: Import) -> str:
        value = getattr(product_import, field)
        return "-" if value is None else f"{value:,}"

    return shown


@admin.register(Import)
class ImportAdmin(admin.ModelAdmin):
    """Upload a products CSV (with the run_import permission) and follow its job; nothing is edited later."""

    form = ImportForm
    list_display = [
        "id",
        "file_name",
        "status",
        "dry_run",
        "progress",
        "rows_done",
        "rows",
        "created",
        "updated",
        "skipped",
        "errors",
        "failure",
        "created_by",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "dry_run"]
    list_select_related = ["created_by"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "file_name",
        "status",
        "dry_run",
        "progress",
        "rows",
        "rows_done",
        "created",
        "updated",
        "skipped",
        "errors",
        "failure_message",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    ]
    inlines = [ImportRowErrorInline]
    actions = ["resume_imports"]

    rows = _count("total_rows", "rows")
    rows_done = _count("processed_rows", "rows done")
    created = _count("created_count", "created")
    updated = _count("updated_count", "updated")
    skipped = _count("invalid_rows", "rows skipped")
    errors = _count("error_count", "errors")

    def get_urls(self):
        sample = path("sample.csv", self.admin_site.admin_view(self.sample_view), name="orders_import_sample")
        return [sample, *super().get_urls()]

    def sample_view(self, request) -> HttpResponse:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        response = HttpResponse(sample_csv(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="products-sample.csv"'
        return response

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        formfield = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "file":
            # The picker offers .csv files only; the form still checks what arrives.
            formfield.widget.attrs["accept"] = ".csv,text/csv"
            formfield.help_text = format_html(
                '{} <a href="{}" download>Download a sample file</a>.',
                ImportForm._meta.help_texts["file"],
                reverse("admin:orders_import_sample"),
            )
        return formfield

    def get_fields(self, request, obj=None):
        return ["file", "dry_run"] if obj is None else self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def has_add_permission(self, request) -> bool:
        return request.user.has_perm("orders.run_import")

    def has_view_permission(self, request, obj=None) -> bool:
        return super().has_view_permission(request, obj) or request.user.has_perm("orders.run_import")

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj: Import, form, change: bool) -> None:
        obj.created_by = request.user
        import_start(product_import=obj)

    @admin.action(description="Resume selected imports (cancelled, or whose job was cancelled)", permissions=["run"])
    def resume_imports(self, request, queryset) -> None:
        resumed = [pk for pk in queryset.values_list("pk", flat=True) if import_resume(import_id=pk)]
        skipped = queryset.count() - len(resumed)
        self.message_user(request, f"{len(resumed)} import(s) resumed after their last committed rows.")
        if skipped:
            self.message_user(request, f"{skipped} import(s) skipped: finished or running.", messages.WARNING)

    def has_run_permission(self, request) -> bool:
        return request.user.has_perm("orders.run_import")

    @admin.display(description="File")
    def file_name(self, product_import: Import) -> str:
        if not product_import.file:
            deleted = f"(deleted {settings.IMPORT_FILE_RETENTION_DAYS} days after the import finished)"
            return f"{product_import.original_name} {deleted}".lstrip()
        return product_import.original_name or PurePath(product_import.file.name).name

    @admin.display(description="Progress")
    def progress(self, product_import: Import) -> str:
        return progress_bar(product_import.progress)

    @admin.display(description="Failure")
    def failure(self, product_import: Import) -> str:
        return Truncator(product_import.failure_message).chars(120)


class PriceBatchItemInline(admin.TabularInline):
    """New items typed by hand while the batch waits; the items it has are listed, paged, below the form.

    The formset holds only the new rows, never the batch's items: a batch of any size is saved
    with a handful of fields, far under DATA_UPLOAD_MAX_NUMBER_FIELDS.
    """

    model = PriceBatchItem
    form = PriceBatchItemForm
    extra = 1
    autocomplete_fields = ["product"]
    fields = ["product", "new_price"]
    verbose_name = "item"
    verbose_name_plural = "add prices by hand"

    def get_queryset(self, request):
        return super().get_queryset(request).none()

    def has_add_permission(self, request, obj=None) -> bool:
        return not _started(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return not _started(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return not _started(obj) and super().has_delete_permission(request, obj)


#: Items listed per page on a price batch's page.
PRICE_ITEMS_PER_PAGE = 100


def _started(batch: PriceBatch | None) -> bool:
    return batch is not None and batch.job_batch_id is not None


@admin.register(PriceBatch)
class PriceBatchAdmin(admin.ModelAdmin):
    """Price changes entered as a batch, then applied by one job per item, with the batch's progress."""

    list_display = ["description", "item_count", "status", "progress", "created_by", "created_at", "started_at"]
    list_select_related = ["job_batch", "created_by"]
    form = PriceBatchForm
    readonly_fields = ["job_batch", "created_by", "started_at", "status", "progress"]
    inlines = [PriceBatchItemInline]
    actions = ["process_batches", "resume_batches"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(item_total=Count("items"))

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["description", "items_file"]
        return ["description", *([] if _started(obj) else ["items_file"]), *self.readonly_fields]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        batch = self.get_object(request, unquote(object_id))
        if batch is not None:
            items = batch.items.select_related("product").order_by("product__sku", "pk")
            page = Paginator(items, PRICE_ITEMS_PER_PAGE).get_page(request.GET.get("items_page"))
            extra_context = {**(extra_context or {}), "items_page": page}
        return super().change_view(request, object_id, form_url, extra_context)

    def response_add(self, request, obj: PriceBatch, post_url_continue=None):
        response = super().response_add(request, obj, post_url_continue)
        if "_addanother" in request.POST or IS_POPUP_VAR in request.POST:
            return response
        # A new batch opens on its own page, where its items are checked before it is processed.
        return HttpResponseRedirect(reverse("admin:orders_pricebatch_change", args=[obj.pk]))

    def save_model(self, request, obj: PriceBatch, form, change: bool) -> None:
        obj.created_by = obj.created_by or request.user
        super().save_model(request, obj, form, change)

    def save_related(self, request, form: PriceBatchForm, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        if not form.prices:
            return
        try:
            count = price_batch_items_set(batch_id=form.instance.pk, prices=form.prices)
        except PriceBatchStarted:
            self.message_user(request, "The batch has started: its items are fixed, the file was not taken.")
            return
        name = form.cleaned_data["items_file"].name
        self.message_user(request, f"{count:,} prices taken from {name}.", messages.SUCCESS)

    @admin.action(description="Process selected price batches", permissions=["process"])
    def process_batches(self, request, queryset) -> None:
        queued = price_batch_queue(batch_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{queued} price batch(es) queued.", messages.SUCCESS)

    def has_process_permission(self, request) -> bool:
        return request.user.has_perm("orders.process_pricebatch")

    @admin.action(description="Resume selected cancelled price batches", permissions=["process"])
    def resume_batches(self, request, queryset) -> None:
        resumed = [pk for pk in queryset.values_list("pk", flat=True) if price_batch_resume(batch_id=pk)]
        self.message_user(request, f"{len(resumed)} price batch(es) resumed after the items they had queued.")
        if len(resumed) < queryset.count():
            skipped = queryset.count() - len(resumed)
            self.message_user(request, f"{skipped} price batch(es) skipped: not cancelled.", messages.WARNING)

    @admin.display(description="Items", ordering="item_total")
    def item_count(self, batch: PriceBatch) -> int:
        return batch.item_total

    @admin.display(description="Status")
    def status(self, batch: PriceBatch) -> str:
        return batch.job_batch.get_status_display() if batch.job_batch else "not started"

    @admin.display(description="Progress")
    def progress(self, batch: PriceBatch) -> str:
        return progress_bar(batch.job_batch.progress) if batch.job_batch else "-"


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    """A sweep over every order, started on save (with the run_dataset permission), one chunk per job."""

    list_display = ["description", "operation", "status", "progress_bar", "processed", "total", "finished_at"]
    list_filter = ["status", "operation"]
    readonly_fields = ["status", "progress_bar", "total", "processed", "cursor", "created_at", "finished_at"]
    actions = ["resume_datasets"]

    def get_fields(self, request, obj=None):
        return (
            ["description", "operation", "chunk_size"]
            if obj is None
            else ["description", "operation"] + [*self.readonly_fields]
        )

    def has_add_permission(self, request) -> bool:
        return request.user.has_perm("orders.run_dataset")

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj: Dataset, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        dataset_start(dataset_id=obj.pk)

    @admin.action(description="Resume selected datasets after their last chunk", permissions=["run"])
    def resume_datasets(self, request, queryset) -> None:
        resumed = [pk for pk in queryset.values_list("pk", flat=True) if dataset_resume(dataset_id=pk)]
        self.message_user(request, f"{len(resumed)} dataset(s) resumed after their last committed chunk.")
        if len(resumed) < queryset.count():
            skipped = queryset.count() - len(resumed)
            self.message_user(request, f"{skipped} dataset(s) skipped: not started or completed.", messages.WARNING)

    def has_run_permission(self, request) -> bool:
        return request.user.has_perm("orders.run_dataset")

    @admin.display(description="Progress")
    def progress_bar(self, dataset: Dataset) -> str:
        return progress_bar(dataset.progress)
