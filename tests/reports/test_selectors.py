"""Daily figures against hand-computed fixtures: local day boundaries, DST days, revenue rules."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from orders.models import Order, Payment
from reports.selectors import report_daily_figures
from tests.orders.factories import make_product
from tests.reports.factories import BERLIN, berlin, place_order, sign_up

pytestmark = pytest.mark.django_db

PAID, FAILED, PENDING = Order.Status.PAID, Order.Status.FAILED, Order.Status.PENDING


def test_the_day_the_clocks_go_forward_counts_its_23_hours_from_midnight_to_midnight():
    # Given four products and orders around Sunday 30 March 2025 in Berlin (02:00 became 03:00)
    mug = make_product(sku="MUG", name="Enamel mug", price=Decimal("12.50"))
    tee = make_product(sku="TEE", name="T-shirt", price=Decimal("24.00"))
    pen = make_product(sku="PEN", name="Fountain pen", price=Decimal("35.00"))
    cap = make_product(sku="CAP", name="Canvas cap", price=Decimal("18.00"))
    # On the day: seven orders, three of them paid (60.00 + 24.00 + 84.50 = 168.50)
    place_order(at=berlin(2025, 3, 30, 0, 0, 0), lines=[(mug, 2), (pen, 1)], payment=Payment.Status.CHARGED)
    place_order(at=berlin(2025, 3, 30, 3, 30), lines=[(tee, 1)], status=PAID, payment=Payment.Status.CHARGED)
    place_order(at=berlin(2025, 3, 30, 9, 0), lines=[(pen, 1)], status=FAILED, payment=Payment.Status.FAILED)
    place_order(
        at=berlin(2025, 3, 30, 12, 0), lines=[(pen, 1)], status=FAILED, payment=Payment.Status.INSUFFICIENT_FUNDS
    )
    place_order(at=berlin(2025, 3, 30, 18, 0), lines=[(cap, 2)], status=FAILED, payment=Payment.Status.CARD_EXPIRED)
    place_order(at=berlin(2025, 3, 30, 20, 0), lines=[(mug, 1)], status=PENDING)
    place_order(at=berlin(2025, 3, 30, 23, 59, 59), lines=[(tee, 3), (mug, 1)], payment=Payment.Status.CHARGED)
    # Off the day: the second before it, its next midnight, and 00:30 on Monday (still Sunday in UTC)
    place_order(at=berlin(2025, 3, 29, 23, 59, 59), lines=[(pen, 1)])
    place_order(at=berlin(2025, 3, 29, 22, 0), lines=[(pen, 1)], status=FAILED, payment=Payment.Status.CARD_EXPIRED)
    place_order(at=berlin(2025, 3, 31, 0, 0, 0), lines=[(pen, 1)])
    place_order(at=berlin(2025, 3, 31, 0, 30), lines=[(cap, 1)])
    # And sign-ups at both midnights, right after the missing hour, and just before the day
    for moment in [(2025, 3, 30, 0, 0, 0), (2025, 3, 30, 3, 0), (2025, 3, 30, 23, 59, 59)]:
        sign_up(at=berlin(*moment))
    for moment in [(2025, 3, 29, 23, 59, 59), (2025, 3, 31, 0, 0, 0)]:
        sign_up(at=berlin(*moment))

    # When the figures of that Sunday are computed
    figures = report_daily_figures(day=date(2025, 3, 30))

    # Then they are the hand-computed ones
    assert figures == {
        "date": "2025-03-30",
        "time_zone": "Europe/Berlin",
        "orders": 7,
        "paid_orders": 3,
        "revenue": "168.50",
        "average_order_value": "56.17",
        "new_customers": 3,
        "payments_failed": {"insufficient_funds": 1, "card_expired": 1, "failed": 1},
        "top_products": [
            {"product_id": tee.pk, "sku": "TEE", "name": "T-shirt", "quantity": 4, "revenue": "96.00"},
            {"product_id": mug.pk, "sku": "MUG", "name": "Enamel mug", "quantity": 3, "revenue": "37.50"},
            {"product_id": pen.pk, "sku": "PEN", "name": "Fountain pen", "quantity": 1, "revenue": "35.00"},
        ],
    }


def test_the_day_the_clocks_go_back_counts_both_half_past_twos_and_its_25th_hour():
    # Given orders on Sunday 26 October 2025 in Berlin (03:00 became 02:00 again)
    product = make_product(price=Decimal("10.00"))
    for moment in [
        berlin(2025, 10, 26, 0, 0, 0),
        datetime(2025, 10, 26, 2, 30, tzinfo=BERLIN),  # summer time, 00:30 UTC
        datetime(2025, 10, 26, 2, 30, fold=1, tzinfo=BERLIN),  # winter time, 01:30 UTC
        berlin(2025, 10, 26, 23, 30),  # 22:30 UTC: 24 hours after midnight have passed
        berlin(2025, 10, 26, 23, 59, 59),
    ]:
        place_order(at=moment, lines=[(product, 1)])
    place_order(at=berlin(2025, 10, 27, 0, 0, 0), lines=[(product, 1)])
    place_order(at=berlin(2025, 10, 25, 23, 59, 59), lines=[(product, 1)])

    # When its figures are computed
    figures = report_daily_figures(day=date(2025, 10, 26))

    # Then all five orders of the 25 hours count, and no other
    assert (figures["orders"], figures["revenue"], figures["average_order_value"]) == (5, "50.00", "10.00")


def test_the_top_products_are_the_ten_with_most_revenue_ties_by_age():
    # Given twelve products sold on one day for 10.00, 20.00, ... 120.00, and two more at 50.00
    products = [make_product(price=Decimal(10 * n)) for n in range(1, 13)]
    for product in products:
        place_order(at=berlin(2025, 6, 15, 12, 0), lines=[(product, 1)])
    tied = [make_product(price=Decimal("25.00")) for _ in range(2)]
    for product in tied:
        place_order(at=berlin(2025, 6, 15, 13, 0), lines=[(product, 2)])

    # When the figures of that day are computed
    top = report_daily_figures(day=date(2025, 6, 15))["top_products"]

    # Then ten products are listed, best first, and the older of two equal products comes first
    assert [item["revenue"] for item in top] == [
        "120.00", "110.00", "100.00", "90.00", "80.00", "70.00", "60.00", "50.00", "50.00", "50.00"
    ]  # fmt: skip
    assert [item["product_id"] for item in top[7:]] == [products[4].pk, tied[0].pk, tied[1].pk]


def test_a_day_without_orders_has_zeros_and_no_division_by_zero():
    figures = report_daily_figures(day=date(2025, 1, 1))
    assert (figures["orders"], figures["paid_orders"], figures["revenue"]) == (0, 0, "0.00")
    assert (figures["average_order_value"], figures["top_products"]) == ("0.00", [])
    assert figures["payments_failed"] == {"insufficient_funds": 0, "card_expired": 0, "failed": 0}


@pytest.mark.parametrize("orders", [1, 30])
def test_the_figures_take_four_queries_however_many_orders(django_assert_num_queries, orders):
    product = make_product()
    for _ in range(orders):
        place_order(at=berlin(2025, 6, 15, 12, 0), lines=[(product, 1), (make_product(), 2)])
    with django_assert_num_queries(4):
        figures = report_daily_figures(day=date(2025, 6, 15))
    assert figures["orders"] == orders
