"""Audit rows carry only the indexes their readers use, and no database check of their product or order.

The order's index becomes (order, reason) for the rows that have an order, the unique key a
partial unique index for the rows that have one (no LIKE index: nothing searches keys), and
the product and the order are kept by the ORM alone, with no foreign key in the database (see
InventoryAudit's docstring). The new indexes come first, so the key is never without its
uniqueness.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0012_email_deliveries_to_mail"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="inventoryaudit",
            index=models.Index(
                condition=models.Q(("order__isnull", False)), fields=["order", "reason"], name="audit_order_reason"
            ),
        ),
        migrations.AddConstraint(
            model_name="inventoryaudit",
            constraint=models.UniqueConstraint(
                condition=models.Q(("idempotency_key__isnull", False)),
                fields=("idempotency_key",),
                name="audit_idempotency_key_unique",
            ),
        ),
        migrations.AlterField(
            model_name="inventoryaudit",
            name="idempotency_key",
            field=models.CharField(blank=True, max_length=100, null=True),
        ),
        migrations.AlterField(
            model_name="inventoryaudit",
            name="order",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="audits",
                to="orders.order",
            ),
        ),
        migrations.AlterField(
            model_name="inventoryaudit",
            name="product",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="audits",
                to="orders.product",
            ),
        ),
    ]
