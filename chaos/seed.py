"""The campaign's data, written before any worker runs: products, customers, orders, a price batch, an import file.

``python -m chaos.seed WORKDIR`` writes the rows and, to ``WORKDIR/expected.json``, what the
checks expect of them: the orders, each product's stock at the start, the import's counts and
products, the price batch, the days to backfill.
"""

from __future__ import annotations

import json
import random
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ORDER_PRODUCTS = 20
LOW_STOCK_PRODUCTS = 2
CUSTOMERS = 40
IMPORT_EXISTING = 60
IMPORT_INVALID = 10
IMPORT_FILE = "chaos-products.csv"
PRICE_BATCH = "chaos price batch"


def seed(workdir: Path, plan) -> dict:
    """Products, customers, pending orders, a price batch and the products an import updates; what to expect."""
    from django.db import transaction

    from orders.models import Customer, Order, OrderItem, PriceBatch, PriceBatchItem, Product

    rng = random.Random(plan.seed + 1)
    with transaction.atomic():
        stocked = [
            Product(sku=f"CH-P{n:02d}", name=f"Chaos product {n}", price=Decimal(10 + n), stock=10_000)
            for n in range(ORDER_PRODUCTS)
        ]
        # Little stock: some orders that want these fail for it, with the stock left untouched.
        scarce = [
            Product(sku=f"CH-LOW{n}", name=f"Scarce product {n}", price=Decimal(5), stock=6)
            for n in range(LOW_STOCK_PRODUCTS)
        ]
        products = Product.objects.bulk_create(stocked + scarce)
        customers = Customer.objects.bulk_create(
            Customer(email=f"chaos{n}@example.com", name=f"Chaos {n}", is_priority=n % 10 == 0)
            for n in range(CUSTOMERS)
        )
        orders = Order.objects.bulk_create(
            Order(customer=customers[n % CUSTOMERS], payment_method_token=token) for n, token in enumerate(plan.tokens)
        )
        items = []
        for order in orders:
            for product in rng.sample(products[:ORDER_PRODUCTS], rng.randint(1, 3)):
                items.append(
                    OrderItem(order=order, product=product, quantity=rng.randint(1, 3), unit_price=product.price)
                )
            if rng.random() < 0.1:
                product = rng.choice(products[ORDER_PRODUCTS:])
                items.append(OrderItem(order=order, product=product, quantity=2, unit_price=product.price))
        OrderItem.objects.bulk_create(items)
        existing = Product.objects.bulk_create(
            Product(sku=f"CH-IMP-{n:04d}", name=f"Old name {n}", price=Decimal(1), stock=1)
            for n in range(IMPORT_EXISTING)
        )
        priced = Product.objects.bulk_create(
            Product(sku=f"CH-PB-{n:04d}", name=f"Priced product {n}", price=Decimal(10), stock=0)
            for n in range(_size(plan, "price_batch"))
        )
        batch = PriceBatch.objects.create(description=PRICE_BATCH)
        PriceBatchItem.objects.bulk_create(
            PriceBatchItem(batch=batch, product=product, new_price=Decimal(10) + Decimal(n) / 100)
            for n, product in enumerate(priced)
        )
    content, expected_import = _import_file(rng, existing, _size(plan, "import"))
    (workdir / IMPORT_FILE).write_bytes(content)
    last = _yesterday() - timedelta(days=1)
    expected = {
        "orders": [order.pk for order in orders],
        "start_stock": {str(product.pk): product.stock for product in products},
        "import": expected_import,
        "price_batch": batch.pk,
        "backfill": {
            "first": (last - timedelta(days=_size(plan, "backfill") - 1)).isoformat(),
            "last": last.isoformat(),
        },
    }
    (workdir / "expected.json").write_text(json.dumps(expected))
    return {"orders": len(orders), "products": Product.objects.count()}


def _size(plan, kind: str) -> int:
    return next(step.size for step in plan.steps if step.kind == kind)


def _import_file(rng: random.Random, existing: list, rows: int) -> tuple[bytes, dict]:
    """A products CSV updating every existing product, creating new ones, with some rows that are wrong."""
    valid = {product.sku: (f"New name {n}", f"{n + 1}.25", n) for n, product in enumerate(existing)}
    created = rows - len(existing) - IMPORT_INVALID
    valid |= {f"CH-NEW-{n:04d}": (f"Imported {n}", f"{n % 90 + 1}.50", n % 40) for n in range(created)}
    lines = [f"{sku},{name},{price},{stock}" for sku, (name, price, stock) in valid.items()]
    lines += [f"CH-BAD-{n:04d},Bad {n},not-a-price,1" for n in range(IMPORT_INVALID)]
    rng.shuffle(lines)
    content = "\n".join(["sku,name,price,stock", *lines, ""]).encode()
    expected = {
        "created": created,
        "updated": len(existing),
        "invalid": IMPORT_INVALID,
        "rows": rows,
        "products": valid,
    }
    return content, expected


def _yesterday():
    from django.utils import timezone

    return timezone.localdate() - timedelta(days=1)


def main(argv: list[str]) -> None:
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from chaos.plan import Plan

    workdir = Path(argv[0])
    print(json.dumps(seed(workdir, Plan.from_dict(json.loads((workdir / "plan.json").read_text())))))


if __name__ == "__main__":
    main(sys.argv[1:])
