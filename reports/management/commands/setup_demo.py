"""Create the demo admin user (DEBUG only), the demo data set and its 60 days of reports; safe to run again."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.utils import timezone

# In reports, not orders: it fills both apps, and orders imports nothing of reports (.importlinter).
from orders.demo import load_demo_data
from orders.demo_history import HISTORY_DAYS, demo_history_load
from reports.models import Report
from reports.services.daily import report_daily_build

DEMO_USER = "admin"
DEMO_PASSWORD = "admin"


class Command(BaseCommand):
    help = "Create the demo admin user (only with DEBUG on), a small demo data set with 60 days of history and reports."

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG:
            self.stdout.write("DEBUG is off: no demo user or data created.")
            return
        users = get_user_model()
        if not users.objects.filter(username=DEMO_USER).exists():
            users.objects.create_superuser(DEMO_USER, "admin@example.com", DEMO_PASSWORD)
        queued = load_demo_data()
        if queued:
            self.stdout.write(f"Demo data created; {queued} demo orders queued for processing.")
        if demo_history_load():
            self.stdout.write(f"Demo history created: {HISTORY_DAYS} days of settled orders before today.")
        # Built here rather than by the workers, so that the reports are there the first time the
        # admin opens (and again if a run stopped half-way); past days are not mailed.
        today = timezone.localdate()
        days = {today - timedelta(days=offset) for offset in range(1, HISTORY_DAYS + 1)}
        missing = sorted(
            days - set(Report.objects.filter(type=Report.Type.DAILY, date__in=days).values_list("date", flat=True))
        )
        for day in missing:
            report_daily_build(day=day, mail=False)
        if missing:
            self.stdout.write(f"{len(missing)} daily reports generated, {missing[0]} to {missing[-1]}.")
        self.stdout.write(
            self.style.SUCCESS(
                f"Admin: http://127.0.0.1:8000/admin/  user {DEMO_USER!r}, password {DEMO_PASSWORD!r} (demo only)"
            )
        )
