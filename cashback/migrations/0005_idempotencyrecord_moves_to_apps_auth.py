"""Idempotency records now live in apps_auth (their table stays `cashback_idempotencyrecord`):
the ledger entry's link points there and the model leaves cashback. State only."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("apps_auth", "0003_idempotencyrecord"),
        ("cashback", "0004_wallet_entries_count"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="ledgerentry",
                    name="idempotency_record",
                    field=models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="entry", to="apps_auth.idempotencyrecord"),
                ),
                migrations.DeleteModel(name="IdempotencyRecord"),
            ],
        ),
    ]
