"""Products in the admin: stock adjustments and their outcome, a price batch from a selection, stock audits."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import transaction
from django.http import HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from orders.forms import PriceChangeForm, StockAdjustmentForm
from orders.models import InventoryAudit, Product, StockAdjustment
from orders.services.inventory import stock_adjustment_request
from orders.services.price_batches import PriceOutOfRange, price_batch_from_products
from workers.admin import ReadOnlyAdmin
from workers.console.audit import AlreadyDone, new_token, record_action


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


@admin.register(InventoryAudit)
class InventoryAuditAdmin(ReadOnlyAdmin):
    list_display = ["processed_at", "product", "change", "stock_after", "reason", "order"]
    list_filter = ["reason"]
    search_fields = ["product__sku"]
