from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0008_stock_adjustment"),
    ]

    operations = [
        migrations.AlterField(
            model_name="import",
            name="status",
            field=models.CharField(
                choices=[
                    ("pending", "Pending"),
                    ("running", "Running"),
                    ("completed", "Completed"),
                    ("failed", "Failed"),
                    ("cancelled", "Cancelled (can be resumed)"),
                ],
                db_index=True,
                default="pending",
                max_length=10,
            ),
        ),
        migrations.AlterField(
            model_name="dataset",
            name="status",
            field=models.CharField(
                choices=[
                    ("pending", "Pending"),
                    ("running", "Running"),
                    ("completed", "Completed"),
                    ("cancelled", "Cancelled (can be resumed)"),
                ],
                default="pending",
                max_length=20,
            ),
        ),
    ]
