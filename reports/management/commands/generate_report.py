"""Generate a report for one day and print it as a table, or queue its job and print the message id."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from reports.formats import report_table
from reports.management.arguments import ended_day
from reports.models import Report
from reports.services.daily import GENERATE_DAILY_REPORT, report_daily_build
from workers.enqueue import enqueue_rollback_unsafe


class Command(BaseCommand):
    help = "Generate the report of one day (default: yesterday) and print it, or queue it with --async."

    def add_arguments(self, parser) -> None:
        parser.add_argument("type", choices=Report.Type.values, help="The kind of report.")
        parser.add_argument("--date", help="The day, YYYY-MM-DD, which must have ended (default: yesterday).")
        parser.add_argument("--force", action="store_true", help="Compute it again even if it is stored already.")
        parser.add_argument("--async", dest="queue", action="store_true", help="Queue the job; print its message id.")
        parser.add_argument("--no-mail", action="store_true", help="Do not mail it (it is mailed once otherwise).")

    def handle(self, *args, **options) -> None:
        day = ended_day(options["date"], option="--date")
        mail = not options["no_mail"]
        if options["queue"]:
            # A command has no transaction of its own to wait for: the job goes out at once.
            message = enqueue_rollback_unsafe(
                GENERATE_DAILY_REPORT, date=day.isoformat(), force=options["force"], mail=mail
            )
            self.stdout.write(message.message_id)
            return
        report = report_daily_build(day=day, force=options["force"], mail=mail)
        self.stdout.write(report_table(report), ending="")
