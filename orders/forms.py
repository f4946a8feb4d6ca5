"""Admin forms for orders, products and product imports."""

from __future__ import annotations

from pathlib import PurePath

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from orders.models import Import, InventoryAudit, OrderItem, PriceBatch, PriceBatchItem
from orders.services.price_batch_files import PriceFileInvalid, price_file_read

#: What clients call a .csv file: Excel on Windows registers it as an Excel type, and curl and
#: browsers that know no type for it send application/octet-stream (the content is checked anyway).
CSV_CONTENT_TYPES = {
    "application/octet-stream",
    "text/csv",
    "text/plain",
    "text/x-csv",
    "text/comma-separated-values",
    "application/csv",
    "application/x-csv",
    "application/vnd.ms-excel",
}


#: Bad lines of a price file named on the form; the rest are counted.
FILE_ERRORS_SHOWN = 20


class StockAdjustmentForm(forms.Form):
    """A change of stock for the selected products; one that would take any of them below zero is refused.

    The job checks again under a row lock: stock may move between this form and the job.
    """

    quantity_change = forms.IntegerField(help_text="Positive to add stock, negative to remove it.")
    reason = forms.ChoiceField(
        choices=[
            (value, label)
            for value, label in InventoryAudit.Reason.choices
            if value in (InventoryAudit.Reason.ADJUSTMENT, InventoryAudit.Reason.RESTOCK)
        ]
    )

    def __init__(self, *args, products=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.products = products

    def clean_quantity_change(self) -> int:
        change = self.cleaned_data["quantity_change"]
        if change == 0:
            raise forms.ValidationError("A change of zero changes nothing.")
        if change < 0 and self.products is not None:
            short = list(self.products.filter(stock__lt=-change).order_by("sku").values_list("sku", "stock")[:11])
            if short:
                named = ", ".join(f"{sku} ({stock})" for sku, stock in short[:10]) + (
                    " and more" if len(short) > 10 else ""
                )
                raise forms.ValidationError(f"Not enough stock to remove {-change} from {named}.")
        return change


class ImportForm(forms.ModelForm):
    """A products CSV to upload: no larger than IMPORT_MAX_UPLOAD_BYTES, named .csv, and text."""

    class Meta:
        model = Import
        fields = ["file", "dry_run"]
        help_texts = {
            "file": "A UTF-8 CSV with the columns sku, name, price and stock. Products are created or updated by sku.",
        }

    def clean_file(self):
        return csv_upload_check(self.cleaned_data["file"])


def csv_upload_check(upload):
    """The uploaded file if it may be a CSV: no larger than IMPORT_MAX_UPLOAD_BYTES, named .csv, and text.

    Raises a ValidationError saying what is wrong; the content's rows are checked by whoever reads it.
    """
    limit = settings.IMPORT_MAX_UPLOAD_BYTES
    if upload.size > limit:
        raise forms.ValidationError(f"The file is {_size(upload.size)}; uploads are limited to {_size(limit)}.")
    if PurePath(upload.name).suffix.lower() != ".csv":
        raise forms.ValidationError(f"Upload a .csv file; {upload.name} is not one.")
    content_type = getattr(upload, "content_type", None)
    if content_type and content_type.split(";")[0].strip().lower() not in CSV_CONTENT_TYPES:
        raise forms.ValidationError(f"Upload a CSV file; this one was sent as {content_type}.")
    start = upload.read(8192)
    upload.seek(0)
    if b"\x00" in start:
        raise forms.ValidationError("This file is binary (it contains NUL bytes), not a CSV.")
    return upload


class OrderItemForm(forms.ModelForm):
    """An order's item; a unit price left empty is the product's price, so only a discount is typed."""

    class Meta:
        model = OrderItem
        fields = ["product", "quantity", "unit_price"]
        help_texts = {"unit_price": "Left empty: the product's price."}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["unit_price"].required = False
        self.fields["unit_price"].widget.attrs["placeholder"] = "product's price"
        self.fields["unit_price"].min_value = 0

    def clean_quantity(self) -> int:
        quantity = self.cleaned_data["quantity"]
        if quantity is not None and quantity < 1:
            raise forms.ValidationError("The quantity is at least 1.")
        return quantity

    def clean(self):
        cleaned = super().clean()
        product = cleaned.get("product")
        if product is not None and cleaned.get("unit_price") is None and "unit_price" not in self.errors:
            cleaned["unit_price"] = product.price
        return cleaned


class PriceBatchForm(forms.ModelForm):
    """A price batch's description, and its items from an uploaded CSV of sku and price (all or nothing)."""

    items_file = forms.FileField(
        label="Prices from a CSV",
        required=False,
        help_text="A UTF-8 CSV with the columns sku and price, one line per product. A product that has an item "
        "gets the new price. One unknown SKU or bad price and nothing is taken; the lines are named.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )

    class Meta:
        model = PriceBatch
        fields = ["description"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        #: Product id -> new price, from a file that passed every check.
        self.prices: dict = {}

    def clean_items_file(self):
        upload = self.cleaned_data.get("items_file")
        if not upload:
            return upload
        csv_upload_check(upload)
        try:
            self.prices = price_file_read(upload)
        except PriceFileInvalid as invalid:
            shown = [str(error) for error in invalid.errors[:FILE_ERRORS_SHOWN]]
            if len(invalid.errors) > FILE_ERRORS_SHOWN:
                shown.append(f"and {len(invalid.errors) - FILE_ERRORS_SHOWN:,} more lines.")
            raise forms.ValidationError(["Nothing was taken from the file.", *shown]) from None
        finally:
            upload.seek(0)
        return upload


class PriceBatchItemForm(forms.ModelForm):
    """One product's new price, entered by hand; a price below zero is refused in plain words."""

    class Meta:
        model = PriceBatchItem
        fields = ["product", "new_price"]

    def clean_new_price(self):
        price = self.cleaned_data["new_price"]
        if price is not None and price < 0:
            raise forms.ValidationError("A price cannot be below zero.")
        return price


class PriceChangeForm(forms.Form):
    """One change for every selected product: a new price for all, or a percentage up or down."""

    description = forms.CharField(max_length=PriceBatch._meta.get_field("description").max_length)
    change = forms.ChoiceField(
        choices=[("price", "Set one new price for all"), ("percent", "Change each price by a percentage")],
        widget=forms.RadioSelect,
        initial="percent",
    )
    new_price = forms.DecimalField(required=False, max_digits=12, decimal_places=2, label="New price")
    percent = forms.DecimalField(
        required=False,
        max_digits=6,
        decimal_places=2,
        label="Percentage",
        help_text="-10 lowers each price by 10 %, 5 raises it by 5 %; rounded to the cent.",
    )
    token = forms.CharField(widget=forms.HiddenInput)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("change") == "price":
            price = cleaned.get("new_price")
            if price is None and "new_price" not in self.errors:
                self.add_error("new_price", "Give the new price.")
            elif price is not None and price < 0:
                self.add_error("new_price", "A price cannot be below zero.")
        elif cleaned.get("change") == "percent":
            percent = cleaned.get("percent")
            if percent is None and "percent" not in self.errors:
                self.add_error("percent", "Give the percentage.")
            elif percent is not None and percent < -100:
                self.add_error("percent", "A price cannot go down by more than 100 %.")
            elif percent == 0:
                self.add_error("percent", "A change of 0 % changes nothing.")
        return cleaned


def _size(size: int) -> str:
    return filesizeformat(size).replace("\xa0", " ")
