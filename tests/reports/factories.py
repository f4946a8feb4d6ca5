"""Factories for report tests: orders, payments and sign-ups at a given local time."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from orders.models import Customer, Order, Payment, Product
from tests.orders.factories import make_customer, make_order

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(*parts: int) -> datetime:
    """A wall-clock time in Berlin: berlin(2025, 3, 30, 23, 59, 59)."""
    return datetime(*parts, tzinfo=BERLIN)


def place_order(
    *,
    at: datetime,
    lines: list[tuple[Product, int]],
    status: str = Order.Status.PROCESSED,
    payment: str | None = None,
    customer: Customer | None = None,
) -> Order:
    """An order placed at ``at`` with its total set, and a payment of ``payment`` status if given."""
    order = make_order(items=lines, status=status, customer=customer or make_customer())
    total = sum((product.price * quantity for product, quantity in lines), start=Decimal(0))
    Order.objects.filter(pk=order.pk).update(created_at=at, total=total)
    if payment:
        Payment.objects.create(
            order=order, amount=total, method_token="tok", idempotency_key=f"order-{order.pk}", status=payment
        )
    return order


def sign_up(*, at: datetime) -> Customer:
    customer = make_customer()
    Customer.objects.filter(pk=customer.pk).update(created_at=at)
    return customer
