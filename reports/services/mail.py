"""The report mail: queued once per report, sent once, with an HTML body and the CSV attached."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from orders.services.emails import mail_fail, mail_send_once
from reports.formats import product_rows, report_csv, report_table, report_title, summary_rows
from reports.models import Report, ReportMail
from workers.enqueue import task_named

logger = logging.getLogger(__name__)

SEND_REPORT_MAIL = task_named("reports.tasks.send_report_mail")


def report_mail_key(report: Report) -> str:
    return f"report-mailed:{report.type}:{report.date.isoformat()}"


def report_mail_queue(*, report: Report) -> ReportMail | None:
    """Record the report's mail and send it after commit; a report is never mailed twice.

    The unique key decides, so two runs at once queue one mail. Returns None when
    ``settings.REPORT_RECIPIENTS`` is empty: then nobody gets it.
    """
    recipients = list(settings.REPORT_RECIPIENTS)
    if not recipients:
        logger.info("no REPORT_RECIPIENTS: %s is not mailed", report)
        return None
    mail, created = ReportMail.objects.get_or_create(
        key=report_mail_key(report), defaults={"report": report, "recipients": recipients}
    )
    if created:
        SEND_REPORT_MAIL.enqueue(mail.pk)  # after commit, through the outbox
    return mail


def report_mail_send(*, mail_id: int) -> ReportMail:
    """Send the mail unless it was sent already; the figures are the report's as they are now."""
    return mail_send_once(
        ReportMail.objects.select_related("report"), mail_id, lambda mail: report_email(mail.report, to=mail.recipients)
    )


def report_mail_fail(*, mail_id: int, error: str) -> ReportMail:
    """Mark a mail as failed for good (its retries are exhausted)."""
    return mail_fail(ReportMail.objects.all(), mail_id, error)


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


def report_email(report: Report, *, to: list[str]) -> EmailMultiAlternatives:
    """The mail of a report: a text body, the same as HTML, and the figures as a CSV file."""
    data = report.data
    message = EmailMultiAlternatives(
        subject=f"{report_title(report)}: {data['orders']} orders, revenue {data['revenue']}",
        body=report_table(report),
        to=to,
    )
    message.attach_alternative(report_email_html(report), "text/html")
    message.attach(report_csv_filename(report), report_csv_bytes(report), "text/csv")
    return message


def report_csv_bytes(report: Report) -> bytes:
    """The report's CSV as attached and downloaded: with a byte order mark, so that a spreadsheet
    opens the UTF-8 product names as UTF-8."""
    return report_csv(report).encode("utf-8-sig")
