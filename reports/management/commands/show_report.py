"""Print a stored report as a table, CSV or JSON."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from reports.formats import report_csv, report_table
from reports.management.arguments import ended_day
from reports.models import Report


class Command(BaseCommand):
    help = "Print the stored report of one day (default: yesterday) as a table, CSV or JSON."

    def add_arguments(self, parser) -> None:
        parser.add_argument("type", choices=Report.Type.values, help="The kind of report.")
        parser.add_argument("--date", help="The day, YYYY-MM-DD (default: yesterday).")
        parser.add_argument("--format", choices=["table", "csv", "json"], default="table")

    def handle(self, *args, **options) -> None:
        day = ended_day(options["date"], option="--date")
        report = Report.objects.filter(type=options["type"], date=day).first()
        if report is None:
            raise CommandError(
                f"There is no {options['type']} report for {day.isoformat()}; "
                f"make it with: manage.py generate_report {options['type']} --date {day.isoformat()}"
            )
        if options["format"] == "json":
            self.stdout.write(json.dumps(report.data, indent=2))
        elif options["format"] == "csv":
            self.stdout.write(report_csv(report), ending="")
        else:
            self.stdout.write(report_table(report), ending="")
