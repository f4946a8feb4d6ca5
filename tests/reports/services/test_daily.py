"""Building the daily report: once per day, kept unless forced, mailed once, even when raced."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from mail.models import Mail
from reports.errors import InvalidDay
from reports.models import Report
from reports.services import daily
from reports.services.daily import report_daily_build
from tests.orders.factories import make_product
from tests.reports.factories import berlin, place_order

pytestmark = pytest.mark.django_db

DAY = date(2025, 11, 27)


def test_building_twice_keeps_the_first_report_and_queues_one_mail(django_capture_on_commit_callbacks, jobs):
    # Given one order on the day, and the report built
    product = make_product(price=Decimal("20.00"))
    place_order(at=berlin(2025, 11, 27, 10, 0), lines=[(product, 1)])
    with django_capture_on_commit_callbacks(execute=True):
        first = report_daily_build(day=DAY)

    # When another order shows up late and the report is built again
    place_order(at=berlin(2025, 11, 27, 11, 0), lines=[(product, 1)])
    with django_capture_on_commit_callbacks(execute=True):
        again = report_daily_build(day=DAY)

    # Then it is the same report with the same figures, and one mail was queued
    assert again.pk == first.pk and again.data["orders"] == 1
    assert Report.objects.count() == 1
    assert list(Mail.objects.values_list("key", "to")) == [
        ("report-mailed:daily:2025-11-27", ["owner@example.com", "accounts@example.com"])
    ]
    assert len(jobs.enqueued("send_mail")) == 1


def test_force_computes_the_report_again_in_place_without_a_second_mail(django_capture_on_commit_callbacks, jobs):
    product = make_product(price=Decimal("20.00"))
    place_order(at=berlin(2025, 11, 27, 10, 0), lines=[(product, 1)])
    with django_capture_on_commit_callbacks(execute=True):
        first = report_daily_build(day=DAY)
    place_order(at=berlin(2025, 11, 27, 11, 0), lines=[(product, 2)])

    with django_capture_on_commit_callbacks(execute=True):
        forced = report_daily_build(day=DAY, force=True)

    assert forced.pk == first.pk
    assert (forced.data["orders"], forced.data["revenue"]) == (2, "60.00")
    assert Report.objects.get().data["revenue"] == "60.00"
    assert Mail.objects.count() == 1 and len(jobs.enqueued("send_mail")) == 1


def test_without_mail_or_recipients_nothing_is_queued(django_capture_on_commit_callbacks, jobs, settings):
    with django_capture_on_commit_callbacks(execute=True):
        report_daily_build(day=DAY, mail=False)
        settings.REPORT_RECIPIENTS = []
        report_daily_build(day=DAY - timedelta(days=1))
    assert Report.objects.count() == 2
    assert not Mail.objects.exists()
    jobs.assert_nothing_enqueued()


@pytest.mark.parametrize("days_ahead", [0, 1])
def test_a_day_that_has_not_ended_is_refused(days_ahead):
    with pytest.raises(InvalidDay, match="has not ended yet in Europe/Berlin"):
        report_daily_build(day=timezone.localdate() + timedelta(days=days_ahead))
    assert not Report.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_store_one_report_and_send_one_mail(jobs):
    # Given an order, and figures that wait until both runs have asked for them, so that each
    # run has found no report before either stores one (on SQLite the second run waits for the
    # write lock instead, and the barrier gives up)
    product = make_product(price=Decimal("20.00"))
    place_order(at=berlin(2025, 11, 27, 10, 0), lines=[(product, 1)])
    barrier = threading.Barrier(2, timeout=2)
    figures = daily.report_daily_figures

    def figures_together(*, day: date) -> dict:
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass
        return figures(day=day)

    results: list[object] = []

    def run() -> None:
        try:
            results.append(report_daily_build(day=DAY).pk)
        except Exception as error:  # noqa: BLE001 - the test reports it below
            results.append(error)
        finally:
            connection.close()

    # When two runs build the report at the same time
    with mock.patch.object(daily, "report_daily_figures", figures_together):
        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)

    # Then both return the one report, one mail is queued, and running the jobs sends one mail
    assert len(set(results)) == 1 and isinstance(results[0], int), results
    assert Report.objects.count() == 1 and Mail.objects.count() == 1
    jobs.drain()
    assert len(mail.outbox) == 1
    assert Mail.objects.get().status == Mail.Status.SENT
