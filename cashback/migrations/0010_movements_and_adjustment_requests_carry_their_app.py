"""Lot movements and adjustment requests carry their app, as every other tenant row does, so
that each can live with its app's other rows (distributed by app on Citus).

The column is added empty, filled from the parent row (a movement's lot, an adjustment
request's wallet), then required (the foreign key checked at once, so that the table can be
altered in the same transaction). Rows written by 0009's replay are filled here too.
"""

import django.db.models.deletion
from django.db import migrations, models

FILL = """
SET CONSTRAINTS ALL IMMEDIATE;
UPDATE cashback_lotmovement m SET app_id = l.app_id
    FROM cashback_lot l WHERE l.id = m.lot_id AND m.app_id IS NULL;
UPDATE cashback_adjustmentrequest r SET app_id = w.app_id
    FROM cashback_wallet w WHERE w.id = r.wallet_id AND r.app_id IS NULL;
SET CONSTRAINTS ALL DEFERRED;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("apps_auth", "0006_app_otp_hourly_quota"),
        ("cashback", "0009_lifecycle"),
    ]

    operations = [
        migrations.AddField(
            model_name="lotmovement",
            name="app",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="apps_auth.app",
            ),
        ),
        migrations.AddField(
            model_name="adjustmentrequest",
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
            model_name="lotmovement",
            name="app",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="apps_auth.app",
            ),
        ),
        migrations.AlterField(
            model_name="adjustmentrequest",
            name="app",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="apps_auth.app",
            ),
        ),
    ]
