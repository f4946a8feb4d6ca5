"""Price batches made by staff in the admin: from a product selection or a CSV, of any size, read back by SKU."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.html import escape

from orders.models import PriceBatch, PriceBatchItem, Product
from tests.orders.factories import make_product
from tests.support.users import login_staff

pytestmark = pytest.mark.django_db

PRODUCTS = reverse("admin:orders_product_changelist")
ADD_BATCH = reverse("admin:orders_pricebatch_add")


def staff(client, *codenames: str) -> User:
    return login_staff(client, "view_product", "view_pricebatch", *codenames)


def many_products(count: int, *, price: str = "10.00") -> list[Product]:
    Product.objects.bulk_create(
        Product(sku=f"BULK-{n:05d}", name=f"Bulk product {n}", price=Decimal(price)) for n in range(count)
    )
    return list(Product.objects.filter(sku__startswith="BULK-").order_by("sku"))


def hidden_fields(page: str) -> dict[str, list[str]]:
    """The hidden inputs of a page, as a POST would send them back."""
    fields: dict[str, list[str]] = {}
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page):
        fields.setdefault(name, []).append(value)
    return fields


def choose_action(client, ids: list[int], query: str = "", *, across: bool = False):
    """The list page's action POST: the ids ticked on the page, and whether "select all" was clicked."""
    data = {"action": "price_batch_from_selection", "index": "0", "_selected_action": ids}
    return client.post(PRODUCTS + query, {**data, "select_across": "1" if across else "0"})


def confirm(client, page: str, query: str = "", **fields):
    return client.post(PRODUCTS + query, {**hidden_fields(page), "create": "1", **fields}, follow=True)


def upload(client, content: bytes, *, url: str = ADD_BATCH, description: str = "Spring prices", **extra):
    data = {"description": description, "items_file": SimpleUploadedFile("prices.csv", content, "text/csv")}
    return client.post(url, {**data, **inline_empty(), **extra}, follow=True)


def inline_empty() -> dict[str, str]:
    return {"items-TOTAL_FORMS": "0", "items-INITIAL_FORMS": "0"}


def test_five_thousand_products_selected_across_the_list_get_a_percentage_cut(client):
    # Given 5,000 products at 10.00, searched for in the list and all selected ("select all 5,000")
    staff(client, "add_pricebatch")
    products = many_products(5_000)
    make_product(sku="OTHER-1", price=Decimal("10.00"))

    # When staff choose the action, then confirm a 10 % cut
    first_page = [product.pk for product in products[:100]]
    page = choose_action(client, first_page, "?q=BULK", across=True).content.decode()
    assert "5,000 products" in page and "BULK-00000 Bulk product 0: 10.00" in page
    assert len(re.findall(r"<input", page)) < 130  # the list page's own ids at most, never one per product
    response = confirm(client, page, "?q=BULK", description="Spring sale", change="percent", percent="-10")

    # Then one batch holds every matching product at 9.00, not started, and its page reads by SKU and name
    batch = PriceBatch.objects.get()
    assert batch.items.count() == 5_000 and batch.job_batch is None
    assert set(batch.items.values_list("new_price", flat=True)) == {Decimal("9.00")}
    assert not batch.items.filter(product__sku="OTHER-1").exists()
    shown = response.content.decode()
    assert "Price batch “Spring sale” made with 5,000 products." in shown
    assert re.search(
        r"<td>BULK-00000</td>\s*<td>Bulk product 0</td>\s*<td[^>]*>10.00</td>\s*<td[^>]*>&rarr; 9.00", shown
    )
    assert "Items (5000)" in shown and "Page 1 of 50" in shown
    page_50 = client.get(response.redirect_chain[-1][0] + "?items_page=50").content.decode()
    assert "<td>BULK-04999</td>" in page_50 and "<td>BULK-00000</td>" not in page_50
    # No price changes before the batch is processed
    assert not Product.objects.exclude(price=Decimal("10.00")).exists()


def test_ticked_products_get_one_new_price_and_a_double_click_makes_one_batch(client):
    staff(client, "add_pricebatch")
    mug, lamp, _other = make_product(sku="MUG-1"), make_product(sku="LAMP-1"), make_product(sku="CARD-1")

    page = choose_action(client, [mug.pk, lamp.pk]).content.decode()
    assert "2 products" in page
    first = confirm(client, page, description="Flat", change="price", new_price="4.99")
    again = confirm(client, page, description="Flat", change="price", new_price="4.99")

    batch = PriceBatch.objects.get()
    assert dict(batch.items.values_list("product__sku", "new_price")) == {
        "MUG-1": Decimal("4.99"),
        "LAMP-1": Decimal("4.99"),
    }
    assert "made with 2 products" in first.content.decode()
    assert "This form was sent already; nothing was done again." in again.content.decode()


def test_a_negative_price_or_a_cut_below_zero_is_refused_in_plain_words(client):
    staff(client, "add_pricebatch")
    mug = make_product(sku="MUG-1")
    page = choose_action(client, [mug.pk]).content.decode()

    negative = confirm(client, page, description="Oops", change="price", new_price="-1").content.decode()
    too_deep = confirm(client, page, description="Oops", change="percent", percent="-120").content.decode()

    assert "A price cannot be below zero." in negative
    assert "A price cannot go down by more than 100 %." in too_deep
    assert "constraint" not in (negative + too_deep).lower()
    assert not PriceBatch.objects.exists()


def test_without_the_permission_to_add_price_batches_the_action_is_not_offered(client):
    staff(client)
    mug = make_product()

    page = client.get(PRODUCTS).content.decode()
    choose_action(client, [mug.pk])

    assert "price_batch_from_selection" not in page
    assert not PriceBatch.objects.exists()


def test_a_csv_of_five_thousand_prices_makes_a_batch_that_saves_again_with_a_price_typed_by_hand(client):
    # Given 5,000 products and a CSV giving each a new price
    staff(client, "add_pricebatch", "change_pricebatch", "add_pricebatchitem")
    products = many_products(5_000)
    content = ("sku,price\n" + "".join(f"{p.sku},{n % 50}.25\n" for n, p in enumerate(products))).encode()

    # When it is uploaded on a new batch
    response = upload(client, content)

    # Then every price is taken, and the batch's page lists them by SKU and name
    batch = PriceBatch.objects.get()
    assert batch.items.count() == 5_000
    assert batch.items.get(product__sku="BULK-00051").new_price == Decimal("1.25")
    page = response.content.decode()
    assert "5,000 prices taken from prices.csv." in page
    assert re.search(
        r"<td>BULK-00001</td>\s*<td>Bulk product 1</td>\s*<td[^>]*>10.00</td>\s*<td[^>]*>&rarr; 1.25", page
    )
    assert "Page 1 of 50" in page

    # And the page, 5,000 items and all, saves with a renamed description and one price typed by hand
    extra = make_product(sku="EXTRA-1", name="Extra")
    url = reverse("admin:orders_pricebatch_change", args=[batch.pk])
    saved = client.post(
        url,
        {
            "description": "Spring prices, final",
            "items-TOTAL_FORMS": "1",
            "items-INITIAL_FORMS": "0",
            "items-0-product": extra.pk,
            "items-0-new_price": "3.00",
        },
    )
    assert saved.status_code == 302
    batch.refresh_from_db()
    assert batch.description == "Spring prices, final" and batch.items.count() == 5_001


def test_a_csv_with_unknown_skus_or_bad_prices_changes_nothing_and_names_its_lines(client):
    staff(client, "add_pricebatch", "change_pricebatch")
    make_product(sku="MUG-1")
    make_product(sku="LAMP-1")
    content = b"sku,price\nMUG-1,4.50\nNOPE-9,3.00\nLAMP-1,-2\nMUG-1,5.00\n"

    page = upload(client, content).content.decode()

    assert "Nothing was taken from the file." in page
    assert escape("line 3: no product has the SKU 'NOPE-9'") in page
    assert escape("line 4: the price '-2' is below zero") in page
    assert escape("line 5: SKU 'MUG-1' is on line 2 already") in page
    assert not PriceBatch.objects.exists() and not PriceBatchItem.objects.exists()


def test_a_csv_on_a_waiting_batch_updates_its_prices_and_a_bad_one_leaves_them(client):
    staff(client, "add_pricebatch", "change_pricebatch")
    mug, lamp = make_product(sku="MUG-1"), make_product(sku="LAMP-1")
    batch = PriceBatch.objects.create(description="Autumn")
    PriceBatchItem.objects.create(batch=batch, product=mug, new_price=Decimal("5.00"))
    url = reverse("admin:orders_pricebatch_change", args=[batch.pk])

    upload(client, b"sku,name,price\nMUG-1,Mug,6.00\nLAMP-1,Lamp,7.00\n", url=url, description="Autumn")
    refused = upload(client, b"sku,price\nMUG-1,abc\n", url=url, description="Autumn").content.decode()

    assert dict(batch.items.values_list("product", "new_price")) == {mug.pk: Decimal("6.00"), lamp.pk: Decimal("7.00")}
    assert escape("line 2: the price 'abc' is not a number such as 12.50") in refused


def test_a_negative_price_typed_by_hand_gets_a_plain_message(client):
    staff(client, "add_pricebatch", "add_pricebatchitem")
    mug = make_product(sku="MUG-1")

    page = client.post(
        ADD_BATCH,
        {"description": "Typed", "items-TOTAL_FORMS": "1", "items-INITIAL_FORMS": "0"}
        | {"items-0-product": mug.pk, "items-0-new_price": "-5"},
    ).content.decode()

    assert "A price cannot be below zero." in page and "constraint" not in page.lower()
    assert not PriceBatch.objects.exists()


def test_products_are_picked_by_autocomplete_on_a_price_batch(client):
    staff(client, "add_pricebatch", "add_pricebatchitem")

    page = client.get(ADD_BATCH).content.decode()

    assert re.search(r'<select name="items-0-product"[^>]*class="admin-autocomplete', page)
    assert 'name="items_file"' in page


def test_an_unreadable_file_or_a_header_without_price_is_refused_with_the_reason(client):
    staff(client, "add_pricebatch")

    binary = upload(client, b"sku,price\nMUG-1,\x00\x01\n").content.decode()
    no_price = upload(client, b"sku,cost\nMUG-1,4.50\n").content.decode()

    assert "This file is binary (it contains NUL bytes), not a CSV." in binary
    assert "The header lacks price: line 1 names the columns sku and price (others are ignored)." in no_price
    assert not PriceBatch.objects.exists()


def test_once_processed_the_batch_page_shows_the_prices_it_replaced_and_takes_no_new_ones(
    client, jobs, perform_jobs, django_capture_on_commit_callbacks
):
    # Given a batch lowering a mug from 10.00 to 7.50, processed
    staff(client, "process_pricebatch", "change_pricebatch", "add_pricebatchitem")
    mug = make_product(sku="MUG-1", name="Mug", price=Decimal("10.00"))
    batch = PriceBatch.objects.create(description="Mugs")
    PriceBatchItem.objects.create(batch=batch, product=mug, new_price=Decimal("7.50"))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("admin:orders_pricebatch_changelist"),
            {"action": "process_batches", "_selected_action": [batch.pk]},
        )
    perform_jobs()

    # When its page is opened
    page = client.get(reverse("admin:orders_pricebatch_change", args=[batch.pk])).content.decode()

    # Then the item reads from the old price to the new, applied, and no file or row can be added
    mug.refresh_from_db()
    assert mug.price == Decimal("7.50")
    assert re.search(r"<td>MUG-1</td>\s*<td>Mug</td>\s*<td[^>]*>10.00</td>\s*<td[^>]*>&rarr; 7.50</td>", page)
    assert "not yet" not in page
    assert 'name="items_file"' not in page and 'name="items-0-new_price"' not in page
