"""The demo's past: weeks of customers and settled orders, so that reports and charts show something at once."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from orders.models import Customer, Order, OrderItem, Payment, Product

#: Days of history before today.
HISTORY_DAYS = 60
#: Seeded, so that every demo shows the same past.
SEED = 2026
FIRST_NAMES = ["Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Niklaus"]
LAST_NAMES = ["Byron", "Church", "Kay", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton", "Wirth", "Dijkstra"]
# How a past order ended, with its weight, its order status and its payment's status (None: no payment).
OUTCOMES = [
    (78, Order.Status.PROCESSED, Payment.Status.CHARGED),
    (4, Order.Status.PAID, Payment.Status.CHARGED),
    (8, Order.Status.FAILED, Payment.Status.INSUFFICIENT_FUNDS),
    (3, Order.Status.FAILED, Payment.Status.CARD_EXPIRED),
    (7, Order.Status.CANCELLED, None),
]


def demo_history_load(*, days: int = HISTORY_DAYS, today: date | None = None) -> list[date]:
    """Create ``days`` days of past orders (and the customers who placed them) once; returns the days.

    The orders are settled already, as if their jobs had run then: they neither queue jobs nor
    touch today's stock. Nothing is created when an order before today exists (the history was
    loaded, or the shop has a past of its own) or when there are no products; then the list is empty.
    """
    today = today or timezone.localdate()
    first = today - timedelta(days=days)
    products = list(Product.objects.order_by("pk"))
    with transaction.atomic():
        if not products or Order.objects.filter(created_at__lt=_at(today, time.min)).exists():
            return []
        rng = random.Random(SEED)
        customers = _customers(rng, first, days)
        day_list = [first + timedelta(days=offset) for offset in range(days)]
        for day in day_list:
            _orders_of(rng, day, customers, products)
    return day_list


def _customers(rng: random.Random, first: date, days: int) -> list[Customer]:
    people = [(given, family) for family in LAST_NAMES for given in FIRST_NAMES]
    rng.shuffle(people)
    customers = Customer.objects.bulk_create(
        Customer(email=f"{given}.{family}@example.com".lower(), name=f"{given} {family}")
        for given, family in people[:40]
    )
    # Signed up over the period, most of them early on.
    for customer in customers:
        signed_up = first + timedelta(days=int(rng.triangular(0, days - 1, 0)))
        customer.created_at = _at(signed_up, time(rng.randrange(8, 20), rng.randrange(60)))
    Customer.objects.bulk_update(customers, ["created_at"])
    return customers


def _orders_of(rng: random.Random, day: date, customers: list[Customer], products: list[Product]) -> None:
    # More orders at weekends and a slow rise over the weeks, so that the chart has a shape.
    weekend = day.weekday() >= 5
    count = rng.randrange(4, 9) + (4 if weekend else 0) + (day.toordinal() % 60) // 12
    known = [customer for customer in customers if customer.created_at.date() <= day] or customers[:1]
    orders, lines = [], []
    for _ in range(count):
        _, status, payment = rng.choices(OUTCOMES, weights=[weight for weight, *_ in OUTCOMES])[0]
        placed = _at(day, time(rng.randrange(7, 23), rng.randrange(60), rng.randrange(60)))
        chosen = rng.sample(products, k=min(len(products), rng.choice([1, 1, 1, 2, 2, 3])))
        items = [(product, rng.choice([1, 1, 1, 2, 3])) for product in chosen]
        total = sum((product.price * quantity for product, quantity in items), Decimal("0.00"))
        order = Order(customer=rng.choice(known), status=status, total=total, payment_method_token="tok_ok")
        if status != Order.Status.CANCELLED:
            order.processed_at = placed + timedelta(minutes=rng.randrange(1, 30))
        if status == Order.Status.FAILED:
            order.failure_reason = f"Payment {payment.label.lower()}."
        orders.append((order, payment))
        lines.append((placed, items))
    Order.objects.bulk_create(order for order, _ in orders)
    # auto_now_add set the creation times to now on insert; bulk_update writes the past ones.
    for (order, _), (placed, _) in zip(orders, lines, strict=True):
        order.created_at = placed
    Order.objects.bulk_update([order for order, _ in orders], ["created_at"])
    OrderItem.objects.bulk_create(
        OrderItem(order=order, product=product, quantity=quantity, unit_price=product.price)
        for (order, _), (_, items) in zip(orders, lines, strict=True)
        for product, quantity in items
    )
    Payment.objects.bulk_create(
        Payment(
            order=order,
            amount=order.total,
            status=payment,
            method_token=order.payment_method_token,
            idempotency_key=f"demo-history-{order.pk}",
            gateway_reference=f"demo_{order.pk}" if payment == Payment.Status.CHARGED else "",
            failure_code="" if payment == Payment.Status.CHARGED else payment.value,
            attempts=1,
        )
        for order, payment in orders
        if payment is not None
    )


def _at(day: date, moment: time) -> datetime:
    return datetime.combine(day, moment, tzinfo=timezone.get_default_timezone())
