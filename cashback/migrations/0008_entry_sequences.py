"""Each ledger entry gets its number in its wallet (`sequence`) and among the wallet's entries of
its type (`type_sequence`), so that a history page, filtered or not, at any offset, is a range of
numbers. Existing entries are numbered in the order history shows them (created_at, then id);
on a large ledger the UPDATE rewrites every entry once, holding the table. Run it with writes
stopped: the previous release's INSERT, without the numbers, fails once it has run (README)."""

from django.db import migrations, models

NUMBER_EXISTING = """
UPDATE cashback_ledgerentry e
SET "sequence" = numbered.sequence, type_sequence = numbered.type_sequence
FROM (
    SELECT id,
           row_number() OVER (PARTITION BY wallet_id ORDER BY created_at, id) AS sequence,
           row_number() OVER (PARTITION BY wallet_id, entry_type ORDER BY created_at, id)
               AS type_sequence
    FROM cashback_ledgerentry
) numbered
WHERE e.id = numbered.id
"""


class Migration(migrations.Migration):
    dependencies = [("cashback", "0007_card_currency_fixed_once_wallets_exist")]

    operations = [
        migrations.AddField(
            model_name="ledgerentry",
            name="sequence",
            field=models.PositiveBigIntegerField(null=True),
        ),
        migrations.AddField(
            model_name="ledgerentry",
            name="type_sequence",
            field=models.PositiveBigIntegerField(null=True),
        ),
        migrations.RunSQL(NUMBER_EXISTING, migrations.RunSQL.noop),
        migrations.AlterField(
            model_name="ledgerentry",
            name="sequence",
            field=models.PositiveBigIntegerField(),
        ),
        migrations.AlterField(
            model_name="ledgerentry",
            name="type_sequence",
            field=models.PositiveBigIntegerField(),
        ),
        migrations.AddConstraint(
            model_name="ledgerentry",
            constraint=models.UniqueConstraint(
                fields=("wallet", "sequence"), name="entry_wallet_sequence"
            ),
        ),
        migrations.AddConstraint(
            model_name="ledgerentry",
            constraint=models.UniqueConstraint(
                fields=("wallet", "entry_type", "type_sequence"),
                name="entry_wallet_type_sequence",
            ),
        ),
        migrations.AddIndex(
            model_name="ledgerentry",
            index=models.Index(
                fields=["wallet", "entry_type", "-created_at", "-id"],
                name="entry_wallet_type_history",
            ),
        ),
    ]
