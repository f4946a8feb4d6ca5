"""E-mail deliveries move into the mail app's Mail, keeping their ids (the jobs queued for them still find them)."""

from django.core.management.color import no_style
from django.db import migrations

BATCH = 1000


def deliveries_to_mail(apps, schema_editor):
    EmailDelivery = apps.get_model("orders", "EmailDelivery")
    Mail = apps.get_model("mail", "Mail")
    # The rows keep the time they were queued, not the time they moved.
    Mail._meta.get_field("created_at").auto_now_add = False
    batch = []
    for delivery in EmailDelivery.objects.order_by("pk").iterator(chunk_size=BATCH):
        batch.append(
            Mail(
                id=delivery.pk,
                key=delivery.key,
                to=[delivery.to],
                subject=delivery.subject,
                body=delivery.body,
                status=delivery.status,
                attempts=delivery.attempts,
                error=delivery.error,
                created_at=delivery.created_at,
                sent_at=delivery.sent_at,
            )
        )
        if len(batch) == BATCH:
            Mail.objects.bulk_create(batch)
            batch = []
    Mail.objects.bulk_create(batch)
    _sequence_past_the_ids(schema_editor, Mail)


def mail_to_deliveries(apps, schema_editor):
    EmailDelivery = apps.get_model("orders", "EmailDelivery")
    Mail = apps.get_model("mail", "Mail")
    EmailDelivery._meta.get_field("created_at").auto_now_add = False
    moved = Mail.objects.exclude(key__startswith="report-mailed:").order_by("pk")
    EmailDelivery.objects.bulk_create(
        (
            EmailDelivery(
                id=mail.pk,
                key=mail.key,
                to=mail.to[0] if mail.to else "",
                subject=mail.subject,
                body=mail.body,
                status=mail.status,
                attempts=mail.attempts,
                error=mail.error,
                created_at=mail.created_at,
                sent_at=mail.sent_at,
            )
            for mail in moved.iterator(chunk_size=BATCH)
        ),
        batch_size=BATCH,
    )
    moved.delete()
    _sequence_past_the_ids(schema_editor, EmailDelivery)


def _sequence_past_the_ids(schema_editor, model):
    """Rows inserted with their ids leave PostgreSQL's id sequence behind: move it past them (no-op on SQLite)."""
    for sql in schema_editor.connection.ops.sequence_reset_sql(no_style(), [model]):
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0011_dataset_verbose_name"),
        ("mail", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(deliveries_to_mail, mail_to_deliveries),
        migrations.DeleteModel(name="EmailDelivery"),
    ]
