"""Webhook events' and deliveries' unique constraints and indexes lead with the app, as their
distribution by app needs (Citus); an event's public id is unique within its app."""

import django.db.models.deletion
import webhooks.models
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("apps_auth", "0007_indexes_lead_with_the_app"),
        ("webhooks", "0003_deliveries_carry_their_app"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="webhookdelivery",
            name="webhook_delivery_once",
        ),
        migrations.RemoveIndex(
            model_name="webhookdelivery",
            name="webhook_delivery_status",
        ),
        migrations.RemoveIndex(
            model_name="webhookdelivery",
            name="webhook_delivery_endpoint",
        ),
        migrations.RemoveIndex(
            model_name="webhookdelivery",
            name="webhook_delivery_due",
        ),
        migrations.AlterField(
            model_name="webhookdelivery",
            name="endpoint",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="deliveries",
                to="webhooks.webhookendpoint",
            ),
        ),
        migrations.AlterField(
            model_name="webhookdelivery",
            name="event",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="deliveries",
                to="webhooks.webhookevent",
            ),
        ),
        migrations.AlterField(
            model_name="webhookevent",
            name="public_id",
            field=models.CharField(default=webhooks.models._event_public_id, max_length=40),
        ),
        migrations.AddIndex(
            model_name="webhookdelivery",
            index=models.Index(
                fields=["app", "status", "-created_at"], name="webhook_delivery_status"
            ),
        ),
        migrations.AddIndex(
            model_name="webhookdelivery",
            index=models.Index(
                fields=["app", "endpoint", "-created_at"], name="webhook_delivery_endpoint"
            ),
        ),
        migrations.AddIndex(
            model_name="webhookdelivery",
            index=models.Index(
                condition=models.Q(("status", "pending")),
                fields=["app", "next_attempt_at"],
                name="webhook_delivery_due",
            ),
        ),
        migrations.AddConstraint(
            model_name="webhookdelivery",
            constraint=models.UniqueConstraint(
                fields=("app", "event", "endpoint"), name="webhook_delivery_once"
            ),
        ),
        migrations.AddConstraint(
            model_name="webhookevent",
            constraint=models.UniqueConstraint(
                fields=("app", "public_id"), name="webhook_event_public_id"
            ),
        ),
    ]
