"""Factories for orders tests: small functions that make valid rows with overridable fields."""

from __future__ import annotations

import itertools
from decimal import Decimal

from django.core.files.base import ContentFile

from orders.models import Customer, Import, Order, OrderItem, Product

_sequence = itertools.count(1)


def make_customer(**fields) -> Customer:
    n = next(_sequence)
    return Customer.objects.create(**{"email": f"customer{n}@example.com", "name": f"Customer {n}", **fields})


def make_product(**fields) -> Product:
    n = next(_sequence)
    return Product.objects.create(
        **{"sku": f"SKU-{n:05d}", "name": f"Product {n}", "price": Decimal("10.00"), "stock": 10, **fields}
    )


def make_order(*, items: list[tuple[Product, int]] | None = None, token: str = "tok_ok", **fields) -> Order:
    customer = fields.pop("customer", None) or make_customer()
    order = Order.objects.create(customer=customer, payment_method_token=token, **fields)
    for product, quantity in items if items is not None else [(make_product(), 1)]:
        OrderItem.objects.create(order=order, product=product, quantity=quantity, unit_price=product.price)
    return order


def products_csv(*rows: str, header: str = "sku,name,price,stock", newline: str = "\n") -> bytes:
    """A products CSV in UTF-8 from its lines, the header first."""
    return newline.join([header, *rows, ""]).encode()


def make_import(content: bytes, *, name: str = "products.csv", **fields) -> Import:
    return Import.objects.create(file=ContentFile(content, name=name), **fields)
