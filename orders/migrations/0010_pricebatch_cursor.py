from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0009_import_dataset_cancelled"),
    ]

    operations = [
        migrations.AddField(
            model_name="pricebatch",
            name="cursor",
            field=models.BigIntegerField(default=0, help_text="The last item queued; a resumed start goes on after it."),
        ),
    ]
