"""Create the demo admin user (DEBUG only) and the demo data set; safe to run again."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from orders.demo import load_demo_data

DEMO_USER = "admin"
DEMO_PASSWORD = "admin"


class Command(BaseCommand):
    help = "Create the demo admin user (only with DEBUG on) and a small demo data set."

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
        self.stdout.write(
            self.style.SUCCESS(
                f"Admin: http://127.0.0.1:8000/admin/  user {DEMO_USER!r}, password {DEMO_PASSWORD!r} (demo only)"
            )
        )
