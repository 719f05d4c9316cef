"""Webhook deliveries carry their app, as every other tenant row does, so that each can live
with its app's other rows (distributed by app on Citus).

The column is added empty, filled from the delivery's event, then required (the foreign key
checked at once, so that the table can be altered in the same transaction).
"""

import django.db.models.deletion
from django.db import migrations, models

FILL = """
SET CONSTRAINTS ALL IMMEDIATE;
UPDATE webhooks_webhookdelivery d SET app_id = e.app_id
    FROM webhooks_webhookevent e WHERE e.id = d.event_id AND d.app_id IS NULL;
SET CONSTRAINTS ALL DEFERRED;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("apps_auth", "0006_app_otp_hourly_quota"),
        ("webhooks", "0002_events_and_deliveries"),
    ]

    operations = [
        migrations.AddField(
            model_name="webhookdelivery",
            name="app",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="apps_auth.app",
            ),
        ),
        migrations.RunSQL(FILL, migrations.RunSQL.noop),
        migrations.AlterField(
            model_name="webhookdelivery",
            name="app",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="apps_auth.app",
            ),
        ),
    ]
