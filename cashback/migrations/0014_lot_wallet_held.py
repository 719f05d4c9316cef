from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # Built without blocking writes to the lots (CREATE INDEX CONCURRENTLY runs outside a
    # transaction).
    atomic = False

    dependencies = [
        ('cashback', '0013_settle_at_read_time_and_refund_claims'),
    ]

    operations = [
        AddIndexConcurrently(
            model_name='lot',
            index=models.Index(condition=models.Q(('pending__gt', 0)), fields=['app', 'wallet', 'available_at'], name='lot_wallet_held'),
        ),
    ]
