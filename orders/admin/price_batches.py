"""Price batches in the admin: items by hand or from a file, processed and resumed as jobs, with progress."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.contrib.admin.utils import unquote
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpResponseRedirect
from django.urls import reverse

from orders.forms import PriceBatchForm, PriceBatchItemForm
from orders.models import PriceBatch, PriceBatchItem
from orders.services.price_batches import (
    PriceBatchStarted,
    price_batch_items_set,
    price_batch_queue,
    price_batch_resume,
)
from workers.admin import progress_bar


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
        queued = price_batch_queue(price_batch_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{queued} price batch(es) queued.", messages.SUCCESS)

    def has_process_permission(self, request) -> bool:
        return request.user.has_perm("orders.process_pricebatch")

    @admin.action(description="Resume selected cancelled price batches", permissions=["process"])
    def resume_batches(self, request, queryset) -> None:
        resumed = [pk for pk in queryset.values_list("pk", flat=True) if price_batch_resume(price_batch_id=pk)]
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
