"""A small demo data set: customers, products and pending orders with each sandbox payment outcome."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from orders.models import Customer, Order, OrderItem, Product
from orders.services.orders import order_queue_processing

PRODUCTS = [
    ("MUG-001", "Enamel mug", "12.50", 40),
    ("TEE-002", "Organic T-shirt", "24.00", 25),
    ("CAP-003", "Canvas cap", "18.00", 3),
    ("BAG-004", "Tote bag", "9.90", 60),
    ("PEN-005", "Fountain pen", "35.00", 10),
]
CUSTOMERS = [
    ("ada@example.com", "Ada Lovelace", True),
    ("alan@example.com", "Alan Turing", False),
    ("grace@example.com", "Grace Hopper", False),
]
# (customer index, payment token, [(sku, quantity)])
ORDERS = [
    (0, "tok_ok", [("MUG-001", 2), ("PEN-005", 1)]),
    (1, "tok_ok", [("TEE-002", 1)]),
    (2, "tok_unavailable_1", [("BAG-004", 3)]),
    (1, "tok_insufficient_funds", [("MUG-001", 1)]),
    (2, "tok_ok", [("CAP-003", 5)]),
]


def load_demo_data() -> int:
    """Create the data set once and queue its orders; returns the number of orders queued."""
    with transaction.atomic():
        if Order.objects.exists():
            return 0
        products = {
            sku: Product.objects.create(sku=sku, name=name, price=Decimal(price), stock=stock)
            for sku, name, price, stock in PRODUCTS
        }
        customers = [
            Customer.objects.create(email=email, name=name, is_priority=priority) for email, name, priority in CUSTOMERS
        ]
        order_ids = []
        for customer_index, token, lines in ORDERS:
            order = Order.objects.create(customer=customers[customer_index], payment_method_token=token)
            OrderItem.objects.bulk_create(
                OrderItem(order=order, product=products[sku], quantity=quantity, unit_price=products[sku].price)
                for sku, quantity in lines
            )
            order_ids.append(order.pk)
        return order_queue_processing(order_ids=order_ids)
