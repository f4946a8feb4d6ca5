"""Orders for the end-to-end scenario: seed them, queue them, and wait for them, as JSON on stdout.

Run as ``python -m bench.workloads.orders seed N``, ``... queue`` or ``... wait N T_COMMIT``, with
the project's settings in the environment.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from decimal import Decimal

PRODUCTS = 200
ORDERS_PER_CUSTOMER = 10


def seed(count: int) -> dict:
    from django.db import transaction

    from orders.models import Customer, Order, OrderItem, Product

    rng = random.Random(7)
    with transaction.atomic():
        products = Product.objects.bulk_create(
            Product(
                sku=f"B-{n:05d}", name=f"Bench product {n}", price=Decimal(rng.randint(100, 9999)) / 100, stock=10**9
            )
            for n in range(PRODUCTS)
        )
        customers = Customer.objects.bulk_create(
            Customer(email=f"bench{n}@example.com", name=f"Bench {n}", is_priority=n % 20 == 0)
            for n in range(max(1, count // ORDERS_PER_CUSTOMER))
        )
        orders = Order.objects.bulk_create(
            Order(customer=customers[n % len(customers)], payment_method_token="tok_ok") for n in range(count)
        )
        OrderItem.objects.bulk_create(
            OrderItem(order=order, product=product, quantity=rng.randint(1, 3), unit_price=product.price)
            for order in orders
            for product in rng.sample(products, 2)
        )
    return {"orders": count}


def queue() -> dict:
    from orders.models import Order
    from orders.services.orders import order_queue_processing

    ids = list(Order.objects.filter(status=Order.Status.PENDING).values_list("pk", flat=True))
    started = time.time()
    queued = order_queue_processing(order_ids=ids)
    return {"queued": queued, "t_start": started, "t_commit": time.time()}


def wait(count: int, t_start: float, timeout: float) -> dict:
    from django.db.models import Max

    from mail.models import Mail
    from orders.models import Order, Payment

    deadline = time.monotonic() + timeout
    done = Order.objects.exclude(processed_at=None)
    while done.count() < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {done.count()} of {count} orders processed in {timeout:.0f} s")
        time.sleep(0.5)
    # The confirmation mail is the last step of an order; wait for those too.
    while Mail.objects.filter(status=Mail.Status.SENT).count() < count:
        time.sleep(0.2)
    latencies = sorted(t.timestamp() - t_start for t in done.values_list("processed_at", flat=True))
    last_mail = Mail.objects.aggregate(last=Max("sent_at"))["last"].timestamp()
    return {
        "processed": len(latencies),
        "failed": Order.objects.filter(status=Order.Status.FAILED).count(),
        "charged": Payment.objects.filter(status=Payment.Status.CHARGED).count(),
        "mails": Mail.objects.filter(status=Mail.Status.SENT).count(),
        "seconds": last_mail - t_start,
        "p50": statistics.median(latencies),
        "p95": latencies[int(len(latencies) * 0.95) - 1],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["seed", "queue", "wait"])
    parser.add_argument("values", nargs="*", type=float)
    args = parser.parse_args(argv)
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    if args.command == "seed":
        result = seed(int(args.values[0]))
    elif args.command == "queue":
        result = queue()
    else:
        result = wait(int(args.values[0]), args.values[1], timeout=args.values[2] if len(args.values) > 2 else 900)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
