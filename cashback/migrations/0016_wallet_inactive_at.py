from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # Without blocking writes: CREATE INDEX CONCURRENTLY runs outside a transaction. The column
    # is nullable without a default, so adding it rewrites nothing; existing wallets have none
    # until their next earning.
    atomic = False

    dependencies = [
        ('cashback', '0015_entries_keep_breakdown_and_lines'),
    ]

    operations = [
        migrations.AddField(
            model_name='wallet',
            name='inactive_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        AddIndexConcurrently(
            model_name='wallet',
            index=models.Index(condition=models.Q(('inactive_at__isnull', False)), fields=['app', 'inactive_at'], name='wallet_inactive'),
        ),
    ]
