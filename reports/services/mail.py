"""The report mail: queued once per report through the mail app, with an HTML body and the CSV attached."""

from __future__ import annotations

import logging

from django.conf import settings
from django.template.loader import render_to_string

from mail.models import Mail
from mail.services import queue_mail
from reports.formats import product_rows, report_csv, report_table, report_title, summary_rows
from reports.models import Report

logger = logging.getLogger(__name__)

#: The start of every report mail's key; the rest names the report.
REPORT_MAIL_KEY_PREFIX = "report-mailed:"


def report_mail_key(report: Report) -> str:
    return f"{REPORT_MAIL_KEY_PREFIX}{report.type}:{report.date.isoformat()}"


def report_mail_queue(*, report: Report) -> Mail | None:
    """Queue the report's mail, sent after commit; a report is never mailed twice.

    The unique key decides, so two runs at once queue one mail. The mail holds the figures as
    they are when it is queued, in the transaction that stored them. Returns None when
    ``settings.REPORT_RECIPIENTS`` is empty: then nobody gets it.
    """
    recipients = list(settings.REPORT_RECIPIENTS)
    if not recipients:
        logger.info("no REPORT_RECIPIENTS: %s is not mailed", report)
        return None
    data = report.data
    return queue_mail(
        key=report_mail_key(report),
        to=recipients,
        subject=f"{report_title(report)}: {data['orders']} orders, revenue {data['revenue']}",
        body=report_table(report),
        html=report_email_html(report),
        attachments=[(report_csv_filename(report), report_csv_text(report), "text/csv")],
    )


def report_email_html(report: Report) -> str:
    """The HTML body of a report's mail, as it is sent (and shown in the admin)."""
    context = {
        "title": report_title(report),
        "summary": summary_rows(report.data),
        "products": product_rows(report.data),
    }
    return render_to_string("reports/daily_report_email.html", context)


def report_csv_filename(report: Report) -> str:
    return f"daily-report-{report.date.isoformat()}.csv"


def report_csv_text(report: Report) -> str:
    """The report's CSV as attached and downloaded: with a byte order mark, so that a spreadsheet
    opens the UTF-8 product names as UTF-8."""
    return "\ufeff" + report_csv(report)


def report_csv_bytes(report: Report) -> bytes:
    """The report's CSV file, as downloaded from the admin."""
    return report_csv_text(report).encode("utf-8")
