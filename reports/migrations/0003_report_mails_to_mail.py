"""Report mails move into the mail app's Mail, under new ids, with the message they send written out."""

from django.db import migrations

from reports.formats import product_rows, report_csv, report_table, report_title, summary_rows


def report_mails_to_mail(apps, schema_editor):
    from django.template.loader import render_to_string

    ReportMail = apps.get_model("reports", "ReportMail")
    Mail = apps.get_model("mail", "Mail")
    Mail._meta.get_field("created_at").auto_now_add = False
    for old in ReportMail.objects.select_related("report").order_by("pk").iterator(chunk_size=100):
        report, data = old.report, old.report.data
        html = render_to_string(
            "reports/daily_report_email.html",
            {"title": report_title(report), "summary": summary_rows(data), "products": product_rows(data)},
        )
        Mail.objects.create(
            key=old.key,
            to=list(old.recipients),
            subject=f"{report_title(report)}: {data['orders']} orders, revenue {data['revenue']}"[:200],
            body=report_table(report),
            html=html,
            attachments=[
                {
                    "filename": f"daily-report-{report.date.isoformat()}.csv",
                    "content": "\ufeff" + report_csv(report),
                    "mimetype": "text/csv",
                }
            ],
            status=old.status,
            attempts=old.attempts,
            error=old.error,
            created_at=old.created_at,
            sent_at=old.sent_at,
        )


def mail_to_report_mails(apps, schema_editor):
    ReportMail = apps.get_model("reports", "ReportMail")
    Report = apps.get_model("reports", "Report")
    Mail = apps.get_model("mail", "Mail")
    ReportMail._meta.get_field("created_at").auto_now_add = False
    moved = Mail.objects.filter(key__startswith="report-mailed:").order_by("pk")
    for mail in moved:
        _, report_type, day = mail.key.split(":", 2)
        report = Report.objects.filter(type=report_type, date=day).first()
        if report is not None:
            ReportMail.objects.create(
                key=mail.key,
                report=report,
                recipients=mail.to,
                status=mail.status,
                attempts=mail.attempts,
                error=mail.error,
                created_at=mail.created_at,
                sent_at=mail.sent_at,
            )
    moved.delete()


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0002_payment_order_status_index"),
        # After the e-mail deliveries, which keep their ids: these take new ones past them.
        ("orders", "0012_email_deliveries_to_mail"),
        ("mail", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(report_mails_to_mail, mail_to_report_mails),
        migrations.DeleteModel(name="ReportMail"),
    ]
