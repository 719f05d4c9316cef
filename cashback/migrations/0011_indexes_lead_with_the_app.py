"""Every unique constraint and index of the ledger's tables leads with the app, as the tables'
distribution by app needs (Citus), and each foreign key is served by one of them. The card's
currency trigger finds the card's wallets, and a new wallet its card, within their app.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


TRIGGERS = """
CREATE OR REPLACE FUNCTION cashback_card_currency_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.currency IS DISTINCT FROM OLD.currency
       AND EXISTS (SELECT 1 FROM cashback_wallet WHERE app_id = OLD.app_id AND card_id = OLD.id)
    THEN
        RAISE EXCEPTION 'card % has wallets: its currency % cannot change', OLD.id, OLD.currency
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE OR REPLACE FUNCTION cashback_wallet_shares_card_lock() RETURNS trigger LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM 1 FROM cards_card WHERE app_id = NEW.app_id AND id = NEW.card_id FOR SHARE;
    RETURN NEW;
END
$$;
"""

TRIGGERS_BEFORE = """
CREATE OR REPLACE FUNCTION cashback_card_currency_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.currency IS DISTINCT FROM OLD.currency
       AND EXISTS (SELECT 1 FROM cashback_wallet WHERE card_id = OLD.id) THEN
        RAISE EXCEPTION 'card % has wallets: its currency % cannot change', OLD.id, OLD.currency
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE OR REPLACE FUNCTION cashback_wallet_shares_card_lock() RETURNS trigger LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM 1 FROM cards_card WHERE id = NEW.card_id FOR SHARE;
    RETURN NEW;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("apps_auth", "0007_indexes_lead_with_the_app"),
        ("cards", "0002_lifecycle"),
        ("cashback", "0010_movements_and_adjustment_requests_carry_their_app"),
        ("members", "0006_indexes_lead_with_the_app"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="ledgerentry",
            name="entry_reference_per_card_and_type",
        ),
        migrations.RemoveConstraint(
            model_name="ledgerentry",
            name="entry_wallet_sequence",
        ),
        migrations.RemoveConstraint(
            model_name="ledgerentry",
            name="entry_wallet_type_sequence",
        ),
        migrations.RemoveConstraint(
            model_name="ledgerentry",
            name="entry_reversed_or_released_once",
        ),
        migrations.RemoveConstraint(
            model_name="wallet",
            name="wallet_member_card",
        ),
        migrations.RemoveIndex(
            model_name="adjustmentrequest",
            name="adjustment_request_status",
        ),
        migrations.RemoveIndex(
            model_name="ledgerentry",
            name="entry_wallet_history",
        ),
        migrations.RemoveIndex(
            model_name="ledgerentry",
            name="entry_newest",
        ),
        migrations.RemoveIndex(
            model_name="ledgerentry",
            name="entry_card_newest",
        ),
        migrations.RemoveIndex(
            model_name="ledgerentry",
            name="entry_app_newest",
        ),
        migrations.RemoveIndex(
            model_name="ledgerentry",
            name="entry_type_newest",
        ),
        migrations.RemoveIndex(
            model_name="ledgerentry",
            name="entry_reference",
        ),
        migrations.RemoveIndex(
            model_name="ledgerentry",
            name="entry_wallet_type_history",
        ),
        migrations.RemoveIndex(
            model_name="lot",
            name="lot_spendable",
        ),
        migrations.RemoveIndex(
            model_name="lot",
            name="lot_held",
        ),
        migrations.RemoveIndex(
            model_name="lot",
            name="lot_expiring",
        ),
        migrations.RemoveIndex(
            model_name="lot",
            name="lot_wallet_expiring",
        ),
        migrations.AlterField(
            model_name="adjustmentrequest",
            name="decided_by",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="adjustmentrequest",
            name="requested_by",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="adjustmentrequest",
            name="token",
            field=models.UUIDField(),
        ),
        migrations.AlterField(
            model_name="adjustmentrequest",
            name="wallet",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="adjustment_requests",
                to="cashback.wallet",
            ),
        ),
        migrations.AlterField(
            model_name="ledgerentry",
            name="approved_by",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="ledgerentry",
            name="created_by",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="ledgerentry",
            name="original_entry",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="followers",
                to="cashback.ledgerentry",
            ),
        ),
        migrations.AlterField(
            model_name="lot",
            name="wallet",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="lots",
                to="cashback.wallet",
            ),
        ),
        migrations.AlterField(
            model_name="lotmovement",
            name="entry",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="movements",
                to="cashback.ledgerentry",
            ),
        ),
        migrations.AlterField(
            model_name="lotmovement",
            name="lot",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="movements",
                to="cashback.lot",
            ),
        ),
        migrations.AlterField(
            model_name="wallet",
            name="card",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="wallets",
                to="cards.card",
            ),
        ),
        migrations.AlterField(
            model_name="wallet",
            name="member",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="wallets",
                to="members.member",
            ),
        ),
        migrations.AddIndex(
            model_name="adjustmentrequest",
            index=models.Index(
                fields=["app", "status", "-created_at"], name="adjustment_request_status"
            ),
        ),
        migrations.AddIndex(
            model_name="adjustmentrequest",
            index=models.Index(fields=["app", "wallet"], name="adjustment_request_wallet"),
        ),
        migrations.AddIndex(
            model_name="ledgerentry",
            index=models.Index(
                fields=["app", "wallet", "-created_at", "-id"], name="entry_wallet_history"
            ),
        ),
        migrations.AddIndex(
            model_name="ledgerentry",
            index=models.Index(
                fields=["app", "wallet", "entry_type", "-created_at", "-id"],
                name="entry_wallet_type_history",
            ),
        ),
        migrations.AddIndex(
            model_name="ledgerentry",
            index=models.Index(fields=["app", "original_entry"], name="entry_original"),
        ),
        migrations.AddIndex(
            model_name="ledgerentry",
            index=models.Index(fields=["app", "-created_at", "-id"], name="entry_newest"),
        ),
        migrations.AddIndex(
            model_name="ledgerentry",
            index=models.Index(fields=["app", "card", "-created_at"], name="entry_card_newest"),
        ),
        migrations.AddIndex(
            model_name="ledgerentry",
            index=models.Index(
                fields=["app", "entry_type", "-created_at"], name="entry_type_newest"
            ),
        ),
        migrations.AddIndex(
            model_name="ledgerentry",
            index=models.Index(fields=["app", "reference"], name="entry_reference"),
        ),
        migrations.AddIndex(
            model_name="lot",
            index=models.Index(fields=["app", "wallet"], name="lot_wallet"),
        ),
        migrations.AddIndex(
            model_name="lot",
            index=models.Index(
                condition=models.Q(("remaining__gt", 0)),
                fields=["app", "wallet", "available_at", "id"],
                name="lot_spendable",
            ),
        ),
        migrations.AddIndex(
            model_name="lot",
            index=models.Index(
                condition=models.Q(("pending__gt", 0)),
                fields=["app", "available_at"],
                name="lot_held",
            ),
        ),
        migrations.AddIndex(
            model_name="lot",
            index=models.Index(
                condition=models.Q(("expires_at__isnull", False), ("remaining__gt", 0)),
                fields=["app", "expires_at"],
                name="lot_expiring",
            ),
        ),
        migrations.AddIndex(
            model_name="lot",
            index=models.Index(
                condition=models.Q(("expires_at__isnull", False), ("remaining__gt", 0)),
                fields=["app", "wallet", "expires_at"],
                name="lot_wallet_expiring",
            ),
        ),
        migrations.AddIndex(
            model_name="lotmovement",
            index=models.Index(fields=["app", "entry"], name="lot_movement_entry"),
        ),
        migrations.AddIndex(
            model_name="lotmovement",
            index=models.Index(fields=["app", "lot"], name="lot_movement_lot"),
        ),
        migrations.AddIndex(
            model_name="wallet",
            index=models.Index(fields=["app", "card"], name="wallet_card"),
        ),
        migrations.AddConstraint(
            model_name="adjustmentrequest",
            constraint=models.UniqueConstraint(
                fields=("app", "token"), name="adjustment_token_per_app"
            ),
        ),
        migrations.AddConstraint(
            model_name="ledgerentry",
            constraint=models.UniqueConstraint(
                condition=models.Q(("reference__isnull", False)),
                fields=("app", "card", "entry_type", "reference"),
                name="entry_reference_per_card_and_type",
            ),
        ),
        migrations.AddConstraint(
            model_name="ledgerentry",
            constraint=models.UniqueConstraint(
                condition=models.Q(("entry_type__in", ["reversal", "release"])),
                fields=("app", "original_entry"),
                name="entry_reversed_or_released_once",
            ),
        ),
        migrations.AddConstraint(
            model_name="ledgerentry",
            constraint=models.UniqueConstraint(
                fields=("app", "wallet", "sequence"), name="entry_wallet_sequence"
            ),
        ),
        migrations.AddConstraint(
            model_name="ledgerentry",
            constraint=models.UniqueConstraint(
                fields=("app", "wallet", "entry_type", "type_sequence"),
                name="entry_wallet_type_sequence",
            ),
        ),
        migrations.AddConstraint(
            model_name="wallet",
            constraint=models.UniqueConstraint(
                fields=("app", "member", "card"), name="wallet_member_card"
            ),
        ),
        migrations.RunSQL(TRIGGERS, TRIGGERS_BEFORE),
    ]
