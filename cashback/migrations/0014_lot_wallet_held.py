from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # Without blocking writes: the validation and CREATE INDEX CONCURRENTLY run outside a
    # transaction of the migration's.
    atomic = False

    dependencies = [
        ('cashback', '0013_settle_at_read_time_and_refund_claims'),
    ]

    operations = [
        # The check the last migration swapped in NOT VALID, validated in a transaction of its
        # own: it reads every entry under a lock that lets writes go on.
        migrations.RunSQL(
            'ALTER TABLE "cashback_ledgerentry" VALIDATE CONSTRAINT "entry_amount_nonzero"',
            reverse_sql=migrations.RunSQL.noop,
        ),
        AddIndexConcurrently(
            model_name='lot',
            index=models.Index(condition=models.Q(('pending__gt', 0)), fields=['app', 'wallet', 'available_at'], name='lot_wallet_held'),
        ),
    ]
