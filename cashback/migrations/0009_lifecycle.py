"""The cashback lifecycle: held (pending) cashback, lots that expire, reversals.

Existing ledgers get their lots by replaying each wallet's entries in order: each earning and
positive adjustment opens a lot (spendable since its entry, never expiring), each debit takes
from the lots as the service now does (a refund from its earning's lot first, everything else
from the oldest). Afterwards a wallet's lots add up to its balance. Like 0008, run it with writes
stopped.
"""

import django.db.models.deletion
from decimal import Decimal
from django.conf import settings
from django.db import migrations, models


def lots_from_ledger(apps, schema_editor):
    LedgerEntry = apps.get_model("cashback", "LedgerEntry")
    Lot = apps.get_model("cashback", "Lot")
    LotMovement = apps.get_model("cashback", "LotMovement")
    using = schema_editor.connection.alias
    entries = (
        LedgerEntry.objects.using(using)
        .order_by("wallet_id", "sequence")
        .values_list(
            "id", "app_id", "wallet_id", "entry_type", "amount", "original_entry_id", "created_at"
        )
    )
    wallet_id = None
    lots: list = []  # the current wallet's, oldest first: [Lot, remaining]
    spends: list = []  # (entry id, the lot's [Lot, remaining], amount taken)

    def flush():
        for held in lots:
            held[0].remaining = held[1]
        Lot.objects.using(using).bulk_create([lot for lot, _ in lots])
        LotMovement.objects.using(using).bulk_create(
            LotMovement(entry_id=entry, lot_id=held[0].pk, amount=-amount)
            for entry, held, amount in spends
        )

    for entry_id, app_id, wallet, entry_type, amount, original, created_at in entries.iterator(
        chunk_size=10_000
    ):
        if wallet != wallet_id:
            if wallet_id is not None:
                flush()
            wallet_id, lots, spends = wallet, [], []
        if amount > 0:
            lot = Lot(
                app_id=app_id,
                wallet_id=wallet,
                source_id=entry_id,
                available_at=created_at,
            )
            lots.append([lot, amount])
            continue
        to_take = -amount
        named = [held for held in lots if held[0].source_id == original] if original else []
        for held in named + [held for held in lots if held not in named]:
            if to_take == 0:
                break
            take = min(to_take, held[1])
            if take > 0:
                held[1] -= take
                to_take -= take
                spends.append((entry_id, held, take))
    if wallet_id is not None:
        flush()


class Migration(migrations.Migration):

    dependencies = [
        ('apps_auth', '0006_app_otp_hourly_quota'),
        ('cards', '0002_lifecycle'),
        ('cashback', '0008_entry_sequences'),
        ('members', '0005_otpchallenge_destination_digest'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Lot',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('pending', models.DecimalField(decimal_places=4, default=Decimal('0'), max_digits=20)),
                ('remaining', models.DecimalField(decimal_places=4, default=Decimal('0'), max_digits=20)),
                ('available_at', models.DateTimeField()),
                ('expires_at', models.DateTimeField(blank=True, null=True)),
                ('warned_at', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
            ],
            options={
                'ordering': ['available_at', 'id'],
            },
        ),
        migrations.CreateModel(
            name='LotMovement',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('amount', models.DecimalField(decimal_places=4, default=Decimal('0'), max_digits=20)),
                ('pending_amount', models.DecimalField(decimal_places=4, default=Decimal('0'), max_digits=20)),
            ],
            options={
                'ordering': ['id'],
            },
        ),
        migrations.RemoveConstraint(
            model_name='ledgerentry',
            name='entry_amount_nonzero',
        ),
        migrations.AddField(
            model_name='ledgerentry',
            name='pending_amount',
            field=models.DecimalField(decimal_places=4, default=Decimal('0'), max_digits=20),
        ),
        migrations.AddField(
            model_name='ledgerentry',
            name='pending_balance_after',
            field=models.DecimalField(decimal_places=4, default=Decimal('0'), max_digits=20),
        ),
        migrations.AddField(
            model_name='wallet',
            name='pending_balance',
            field=models.DecimalField(decimal_places=4, default=Decimal('0'), max_digits=20),
        ),
        migrations.AlterField(
            model_name='ledgerentry',
            name='entry_type',
            field=models.CharField(choices=[('earning', 'Earning'), ('redemption', 'Redemption'), ('refund', 'Refund'), ('adjustment', 'Adjustment'), ('release', 'Release'), ('expiration', 'Expiration'), ('reversal', 'Reversal')], max_length=12),
        ),
        migrations.AlterField(
            model_name='ledgerentry',
            name='event',
            field=models.CharField(max_length=32),
        ),
        migrations.AlterField(
            model_name='ledgerentry',
            name='original_entry',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='followers', to='cashback.ledgerentry'),
        ),
        migrations.AddConstraint(
            model_name='ledgerentry',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('amount', 0), _negated=True), models.Q(('pending_amount', 0), _negated=True), ('entry_type', 'refund'), _connector='OR'), name='entry_amount_nonzero'),
        ),
        migrations.AddConstraint(
            model_name='ledgerentry',
            constraint=models.CheckConstraint(condition=models.Q(('pending_balance_after__gte', 0)), name='entry_pending_balance_gte_0'),
        ),
        migrations.AddConstraint(
            model_name='ledgerentry',
            constraint=models.UniqueConstraint(condition=models.Q(('entry_type__in', ['reversal', 'release'])), fields=('original_entry',), name='entry_reversed_or_released_once'),
        ),
        migrations.AddConstraint(
            model_name='wallet',
            constraint=models.CheckConstraint(condition=models.Q(('pending_balance__gte', 0)), name='wallet_pending_balance_gte_0'),
        ),
        migrations.AddField(
            model_name='lot',
            name='app',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='apps_auth.app'),
        ),
        migrations.AddField(
            model_name='lot',
            name='source',
            field=models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='lot', to='cashback.ledgerentry'),
        ),
        migrations.AddField(
            model_name='lot',
            name='wallet',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='lots', to='cashback.wallet'),
        ),
        migrations.AddField(
            model_name='lotmovement',
            name='entry',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='movements', to='cashback.ledgerentry'),
        ),
        migrations.AddField(
            model_name='lotmovement',
            name='lot',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='movements', to='cashback.lot'),
        ),
        migrations.AddIndex(
            model_name='lot',
            index=models.Index(condition=models.Q(('remaining__gt', 0)), fields=['wallet', 'available_at', 'id'], name='lot_spendable'),
        ),
        migrations.AddIndex(
            model_name='lot',
            index=models.Index(condition=models.Q(('pending__gt', 0)), fields=['available_at'], name='lot_held'),
        ),
        migrations.AddIndex(
            model_name='lot',
            index=models.Index(condition=models.Q(('expires_at__isnull', False), ('remaining__gt', 0)), fields=['expires_at'], name='lot_expiring'),
        ),
        migrations.AddConstraint(
            model_name='lot',
            constraint=models.CheckConstraint(condition=models.Q(('pending__gte', 0)), name='lot_pending_gte_0'),
        ),
        migrations.AddConstraint(
            model_name='lot',
            constraint=models.CheckConstraint(condition=models.Q(('remaining__gte', 0)), name='lot_remaining_gte_0'),
        ),
        migrations.AddConstraint(
            model_name='lotmovement',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('amount', 0), _negated=True), models.Q(('pending_amount', 0), _negated=True), _connector='OR'), name='lot_movement_nonzero'),
        ),
        migrations.AddIndex(
            model_name='lot',
            index=models.Index(condition=models.Q(('expires_at__isnull', False), ('remaining__gt', 0)), fields=['wallet', 'expires_at'], name='lot_wallet_expiring'),
        ),
        migrations.RunPython(lots_from_ledger, migrations.RunPython.noop),
    ]
