"""Report figures read from the orders tables with SQL aggregates, and stored reports read back.

Every figure of a daily report is about one local calendar day: the orders placed that day
(``Order.created_at``, indexed) and the customers who signed up that day. Revenue counts the
orders among them whose payment was taken, that is paid or processed (a charged payment moves
an order to paid and on to processed); pending, failed and cancelled orders bring none. The
average order value is that revenue over those paid orders. Failed payments are those of the
day's orders, by their status.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.db.models import Count, DecimalField, F, Q, Sum
from django.db.models.fields.json import KT

from orders.models import Customer, Order, OrderItem, Payment
from reports.models import Report
from reports.periods import day_bounds

REVENUE_STATUSES = (Order.Status.PAID, Order.Status.PROCESSED)
FAILED_PAYMENT_STATUSES = (Payment.Status.INSUFFICIENT_FUNDS, Payment.Status.CARD_EXPIRED, Payment.Status.FAILED)
TOP_PRODUCTS = 10
CENT = Decimal("0.01")
MONEY = DecimalField(max_digits=14, decimal_places=2)


def report_daily_figures(*, day: date) -> dict[str, Any]:
    """The daily report's figures for one day, as JSON-ready values (amounts as strings).

    Four aggregate queries whatever the number of orders: no order row is loaded into Python.
    """
    start, end = day_bounds(day)
    paid = Q(status__in=REVENUE_STATUSES)
    summary = Order.objects.filter(created_at__gte=start, created_at__lt=end).aggregate(
        orders=Count("pk"), paid_orders=Count("pk", filter=paid), revenue=Sum("total", filter=paid)
    )
    failed = dict(
        Payment.objects.filter(
            order__created_at__gte=start, order__created_at__lt=end, status__in=FAILED_PAYMENT_STATUSES
        )
        .values_list("status")
        # COUNT(*), not COUNT(id): the index on (order_id, status) then answers on its own.
        .annotate(payments=Count("*"))
    )
    top_products = (
        OrderItem.objects.filter(
            order__created_at__gte=start, order__created_at__lt=end, order__status__in=REVENUE_STATUSES
        )
        .values_list("product_id", "product__sku", "product__name")
        .annotate(units=Sum("quantity"), revenue=Sum(F("quantity") * F("unit_price"), output_field=MONEY))
        .order_by("-revenue", "product_id")[:TOP_PRODUCTS]
    )
    revenue = _money(summary["revenue"])
    paid_orders = summary["paid_orders"]
    return {
        "date": day.isoformat(),
        "time_zone": settings.TIME_ZONE,
        "orders": summary["orders"],
        "paid_orders": paid_orders,
        "revenue": str(revenue),
        "average_order_value": str(_money(revenue / paid_orders) if paid_orders else Decimal("0.00")),
        "new_customers": Customer.objects.filter(created_at__gte=start, created_at__lt=end).count(),
        "payments_failed": {status.value: failed.get(status.value, 0) for status in FAILED_PAYMENT_STATUSES},
        "top_products": [
            {"product_id": product_id, "sku": sku, "name": name, "quantity": units, "revenue": str(_money(amount))}
            for product_id, sku, name, units, amount in top_products
        ],
    }


def report_daily_series(*, end: date, days: int = 30) -> list[tuple[date, int, Decimal]]:
    """(day, orders, revenue) of the stored daily reports of the ``days`` days up to ``end``.

    Only the two figures are read from each report's data, not the whole document.
    """
    rows = (
        Report.objects.filter(type=Report.Type.DAILY, date__gt=end - timedelta(days=days), date__lte=end)
        .order_by("date")
        .values_list("date", KT("data__orders"), KT("data__revenue"))
    )
    return [(day, int(orders or 0), Decimal(revenue or 0)) for day, orders, revenue in rows]


def _money(value: Decimal | None) -> Decimal:
    return Decimal(value or 0).quantize(CENT, rounding=ROUND_HALF_UP)
