"""Admin forms for orders, products and product imports."""

from __future__ import annotations

from pathlib import PurePath

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from orders.models import Import, InventoryAudit

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
        upload = self.cleaned_data["file"]
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


def _size(size: int) -> str:
    return filesizeformat(size).replace("\xa0", " ")
