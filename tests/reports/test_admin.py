"""The reports admin: a list, a detail page with its chart drawn in place, and regenerate behind its permission."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from reports.models import Report
from reports.tasks import generate_daily_report
from tests.support.users import login_staff

pytestmark = pytest.mark.django_db


def staff(client, *codenames: str) -> User:
    return login_staff(client, "view_report", *codenames, username="analyst")


def make_report(day: date, *, orders: int, revenue: str) -> Report:
    data = {
        "date": day.isoformat(),
        "time_zone": "Europe/Berlin",
        "orders": orders,
        "paid_orders": orders,
        "revenue": revenue,
        "average_order_value": "10.00",
        "new_customers": 0,
        "payments_failed": {"insufficient_funds": 0, "card_expired": 0, "failed": 0},
        "top_products": [{"product_id": 1, "sku": "MUG", "name": "<b>Mug</b>", "quantity": 2, "revenue": "25.00"}],
    }
    return Report.objects.create(date=day, data=data)


def test_the_list_shows_each_days_figures(client):
    staff(client)
    make_report(date(2025, 11, 27), orders=12, revenue="345.60")
    page = client.get(reverse("admin:reports_report_changelist")).content.decode()
    assert "Nov. 27, 2025" in page and "345.60" in page
    assert 'value="regenerate"' not in page


def test_the_detail_page_draws_orders_and_revenue_per_day_from_local_markup_only(client):
    # Given reports for three days of the last thirty, the busiest on the 25th
    staff(client)
    last = date(2025, 11, 27)
    for offset, (orders, revenue) in enumerate([(4, "40.00"), (8, "80.00"), (2, "20.00")]):
        report = make_report(last - timedelta(days=2 - offset), orders=orders, revenue=revenue)

    # When the latest one is opened
    page = client.get(reverse("admin:reports_report_change", args=[report.pk])).content.decode()

    # Then its figures, its products (escaped) and two inline SVG charts of three bars are shown
    assert re.search(r"<th scope=\"row\">Revenue</th><td class=\"number\">20.00</td>", page)
    assert "&lt;b&gt;Mug&lt;/b&gt;" in page
    charts = re.findall(r'<svg class="console-chart".*?</svg>', page, re.DOTALL)
    assert len(charts) == 2
    assert [len(re.findall(r"<rect ", chart)) for chart in charts] == [3, 3]
    assert "<title>orders, 26 Nov: 8 orders</title>" in charts[0]
    assert "<title>revenue, 27 Nov: 20 revenue</title>" in charts[1]
    # Each chart has its title, a y axis in its unit, day labels from the first day to the report's, a legend
    assert "Orders per day, 29 Oct to 27 Nov 2025" in charts[0]
    assert re.search(r'class="unit">orders</text>', charts[0]) and re.search(r'class="unit">revenue</text>', charts[1])
    assert re.search(r'text-anchor="start">29 Oct</text>', charts[0])
    assert re.search(r'text-anchor="end">27 Nov</text>', charts[0])
    assert re.search(r'<line class="series-0"[^>]*/><text[^>]*>orders</text>', charts[0])
    # The busiest day's bar is the tallest, and its colours come from the admin's theme
    heights = [float(h) for h in re.findall(r'<rect class="series-0 bar"[^>]*height="([\d.]+)"', charts[0])]
    assert heights.index(max(heights)) == 1
    assert "workers/console.css" in page
    # Nothing is loaded from elsewhere: no script and no external address
    assert '<script src="http' not in page and "cdn" not in page.lower()
    assert "Regenerate</button>" not in page


def test_regenerate_queues_the_selected_days_again_for_those_allowed(client, jobs, django_capture_on_commit_callbacks):
    staff(client, "regenerate_report")
    first, second = (
        make_report(date(2025, 11, 26), orders=1, revenue="1.00"),
        make_report(date(2025, 11, 27), orders=1, revenue="1.00"),
    )
    detail = client.get(reverse("admin:reports_report_change", args=[first.pk])).content.decode()
    assert "Regenerate</button>" in detail

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:reports_report_changelist"),
            {"action": "regenerate", "_selected_action": [first.pk, second.pk]},
            follow=True,
        )

    assert "2 report(s) queued to be generated again." in response.content.decode()
    assert {job.kwargs["date"] for job in jobs.enqueued(generate_daily_report)} == {"2025-11-26", "2025-11-27"}
    jobs.assert_enqueued(generate_daily_report, date="2025-11-27", force=True, mail=False, count=1)


def test_without_the_permission_regenerate_is_refused_and_nothing_is_queued(client, jobs):
    staff(client)
    report = make_report(date(2025, 11, 27), orders=1, revenue="1.00")
    response = client.post(
        reverse("admin:reports_report_changelist"),
        {"action": "regenerate", "_selected_action": [report.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert 'value="regenerate"' not in response.content.decode()
    jobs.assert_nothing_enqueued()


def test_the_detail_page_offers_the_csv_and_the_mail_as_sent(client):
    # Given a report with a product whose name is markup
    staff(client)
    report = make_report(date(2025, 11, 27), orders=12, revenue="345.60")
    page = client.get(reverse("admin:reports_report_change", args=[report.pk])).content.decode()

    # When the analyst follows the two links beside the chart
    csv_url = reverse("admin:reports_report_csv", args=[report.pk])
    mail_url = reverse("admin:reports_report_mail", args=[report.pk])
    assert f'href="{csv_url}"' in page and f'href="{mail_url}"' in page
    download = client.get(csv_url)
    mail = client.get(mail_url)

    # Then the CSV is the mail's attachment, and the mail's HTML body is shown, escaped
    assert download["Content-Type"] == "text/csv; charset=utf-8"
    assert download["Content-Disposition"] == 'attachment; filename="daily-report-2025-11-27.csv"'
    text = download.content.decode("utf-8-sig")
    assert text.startswith("Figure,Value\r\nOrders,12\r\n") and "Revenue,345.60" in text
    body = mail.content.decode()
    assert "<h1" in body and "Daily report for 2025-11-27" in body and "345.60" in body
    assert "&lt;b&gt;Mug&lt;/b&gt;" in body
    assert "default-src 'none'" in mail["Content-Security-Policy"]


def test_the_csv_and_the_mail_are_for_staff_who_may_view_reports(client):
    report = make_report(date(2025, 11, 27), orders=1, revenue="1.00")
    login_staff(client, "view_order")
    assert client.get(reverse("admin:reports_report_csv", args=[report.pk])).status_code == 403
    assert client.get(reverse("admin:reports_report_mail", args=[report.pk])).status_code == 403
