"""The demo data set: 60 days of settled orders and their reports, so that reports and charts show something at once."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from orders.models import Order
from reports.models import Report
from tests.support.users import login_staff

pytestmark = pytest.mark.django_db


def test_the_demo_holds_sixty_days_of_history_with_a_report_and_a_chart_for_each(
    client, jobs, settings, django_capture_on_commit_callbacks
):
    # Given a fresh demo, set up as `make run` does
    settings.DEBUG = True
    with django_capture_on_commit_callbacks(execute=True):
        call_command("setup_demo", stdout=io.StringIO())
    today = timezone.localdate()

    # Then the 60 days before today have orders, and each of them a stored report
    days = {today - timedelta(days=offset) for offset in range(1, 61)}
    assert set(Report.objects.values_list("date", flat=True)) == days
    assert Order.objects.filter(created_at__date__lt=today).count() >= 60 * 4
    assert all(report.data["orders"] > 0 for report in Report.objects.all())
    assert sum(int(report.data["paid_orders"]) for report in Report.objects.all()) > 0

    # When a staff member opens the reports, and yesterday's report
    login_staff(client, "view_report")
    listing = client.get(reverse("admin:reports_report_changelist")).content.decode()
    yesterday = Report.objects.get(date=today - timedelta(days=1))
    page = client.get(reverse("admin:reports_report_change", args=[yesterday.pk])).content.decode()

    # Then the list shows 60 reports and the charts have a bar for each of the last 30 days
    assert "60 reports" in listing
    charts = re.findall(r'<svg class="console-chart".*?</svg>', page, re.DOTALL)
    assert len(charts) == 2
    assert all(chart.count("<rect ") == 30 for chart in charts)


def test_setting_up_the_demo_again_adds_nothing(jobs, settings, django_capture_on_commit_callbacks):
    # Given a demo set up once
    settings.DEBUG = True
    with django_capture_on_commit_callbacks(execute=True):
        call_command("setup_demo", stdout=io.StringIO())
    counts = (Order.objects.count(), Report.objects.count())

    # When it is set up again
    with django_capture_on_commit_callbacks(execute=True):
        call_command("setup_demo", stdout=io.StringIO())

    # Then nothing doubled
    assert (Order.objects.count(), Report.objects.count()) == counts
