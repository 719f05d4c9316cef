"""Idempotency records are listed by their app first: the purge goes app by app."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("apps_auth", "0006_app_otp_hourly_quota"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="idempotencyrecord",
            name="idempotency_created",
        ),
        migrations.AddIndex(
            model_name="idempotencyrecord",
            index=models.Index(fields=["app", "created_at"], name="idempotency_created"),
        ),
    ]
