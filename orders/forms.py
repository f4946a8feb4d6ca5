"""Admin forms for orders and products."""

from __future__ import annotations

from django import forms

from orders.models import InventoryAudit


class StockAdjustmentForm(forms.Form):
    quantity_change = forms.IntegerField(help_text="Positive to add stock, negative to remove it.")
    reason = forms.ChoiceField(
        choices=[(value, label) for value, label in InventoryAudit.Reason.choices if value != "order_reservation"]
    )

    def clean_quantity_change(self) -> int:
        change = self.cleaned_data["quantity_change"]
        if change == 0:
            raise forms.ValidationError("A change of zero changes nothing.")
        return change
