"""The order form as staff fill it: products picked by autocomplete, prices from the product, a total on save."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from orders.models import Order
from tests.orders.factories import make_customer, make_order, make_product
from tests.support.users import login_staff

pytestmark = pytest.mark.django_db

ADD_ORDER = reverse("admin:orders_order_add")
ITEMS = ("add_orderitem", "change_orderitem", "view_orderitem", "view_product", "view_customer")


def management_forms(page: str) -> dict[str, str]:
    """Each inline's TOTAL_FORMS and INITIAL_FORMS as the page holds them, zero new rows."""
    fields = dict(re.findall(r'name="([\w-]+-(?:TOTAL|INITIAL|MIN_NUM|MAX_NUM)_FORMS)"[^>]*value="(\d+)"', page))
    return {name: "0" if name.endswith("TOTAL_FORMS") else value for name, value in fields.items()}


def order_form(client, customer, rows: list[dict[str, str]]) -> dict[str, str]:
    data = {**management_forms(client.get(ADD_ORDER).content.decode())}
    data.update({"customer": customer.pk, "payment_method_token": "tok_ok", "items-TOTAL_FORMS": str(len(rows))})
    for n, row in enumerate(rows):
        data.update({f"items-{n}-{field}": value for field, value in row.items()})
    return data


def test_an_order_takes_its_products_prices_and_shows_its_total_and_items_on_save(client):
    # Given a clerk, a mug at 4.50 and a lamp at 30.00
    login_staff(client, "add_order", "change_order", "view_order", *ITEMS)
    customer = make_customer()
    mug = make_product(sku="SKU-1", name="Mug", price=Decimal("4.50"))
    lamp = make_product(sku="LAMP-1", name="Lamp", price=Decimal("30.00"))

    # When they add an order of two mugs at the product's price and a lamp at a price they type
    rows = [
        {"product": str(mug.pk), "quantity": "2", "unit_price": ""},
        {"product": str(lamp.pk), "quantity": "1", "unit_price": "25.00"},
    ]
    response = client.post(ADD_ORDER, order_form(client, customer, rows), follow=True)

    # Then the mugs cost the product's price, and the total is there at once, before processing
    order = Order.objects.get()
    assert order.status == Order.Status.PENDING
    assert sorted(order.items.values_list("unit_price", flat=True)) == [Decimal("4.50"), Decimal("25.00")]
    assert order.total == Decimal("34.00")
    page = client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
    assert response.status_code == 200 and "34.00" in page
    assert "2 × Mug (SKU-1) at 4.50" in page


def test_order_items_are_picked_by_autocomplete_and_a_zero_quantity_is_refused_in_plain_words(client):
    login_staff(client, "add_order", *ITEMS)
    customer, mug = make_customer(), make_product()

    form = client.get(ADD_ORDER).content.decode()
    page = client.post(
        ADD_ORDER, order_form(client, customer, [{"product": str(mug.pk), "quantity": "0", "unit_price": ""}])
    ).content.decode()

    assert re.search(r'<select name="items-__prefix__-product"[^>]*class="admin-autocomplete', form)
    assert "The quantity is at least 1." in page and "constraint" not in page.lower()
    assert not Order.objects.exists()


def test_editing_an_orders_items_updates_its_total(client):
    login_staff(client, "change_order", "view_order", *ITEMS)
    mug = make_product(price=Decimal("4.50"))
    order = make_order(items=[(mug, 1)])
    url = reverse("admin:orders_order_change", args=[order.pk])
    item = order.items.get()
    data = {
        **management_forms(client.get(url).content.decode()),
        "customer": order.customer_id,
        "payment_method_token": "tok_ok",
        "items-TOTAL_FORMS": "1",
        "items-0-id": item.pk,
        "items-0-order": order.pk,
        "items-0-product": mug.pk,
        "items-0-quantity": "3",
        "items-0-unit_price": "4.50",
    }

    assert client.post(url, data).status_code == 302

    order.refresh_from_db()
    assert order.total == Decimal("13.50")


def test_a_charged_orders_items_are_shown_but_no_longer_edited(client):
    login_staff(client, "change_order", "view_order", *ITEMS)
    order = make_order(status=Order.Status.PROCESSED, total=Decimal("10.00"))
    url = reverse("admin:orders_order_change", args=[order.pk])

    page = client.get(url).content.decode()

    assert 'name="items-0-quantity"' not in page and "1 × Product" in page
