"""Idempotency records belong to the app: the model moves here from cashback, keeping its table
(`cashback_idempotencyrecord`), so nothing in the database changes."""

import django.db.models.deletion
from django.db import migrations, models


def relabel(old: str, new: str):
    def move_content_type(apps, schema_editor):
        """Permissions and admin history follow the model to its app."""
        types = apps.get_model("contenttypes", "ContentType").objects.using(
            schema_editor.connection.alias
        )
        if not types.filter(app_label=new, model="idempotencyrecord").exists():
            types.filter(app_label=old, model="idempotencyrecord").update(app_label=new)

    return move_content_type


class Migration(migrations.Migration):
    dependencies = [
        ("apps_auth", "0002_otpchallenge"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="IdempotencyRecord",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("key", models.CharField(max_length=255)),
                        ("request_fingerprint", models.CharField(max_length=64)),
                        ("state", models.CharField(choices=[("in_progress", "In progress"), ("completed", "Completed")], max_length=12)),
                        ("lease_until", models.DateTimeField()),
                        ("response_status", models.PositiveSmallIntegerField(blank=True, null=True)),
                        ("response_body", models.TextField(blank=True, default="")),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("app", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to="apps_auth.app")),
                    ],
                    options={
                        "db_table": "cashback_idempotencyrecord",
                        "ordering": ["-created_at", "-id"],
                        "indexes": [models.Index(fields=["created_at"], name="idempotency_created")],
                        "constraints": [models.UniqueConstraint(fields=("app", "key"), name="idempotency_key_per_app")],
                    },
                ),
            ],
        ),
        migrations.RunPython(relabel("cashback", "apps_auth"), relabel("apps_auth", "cashback")),
    ]
