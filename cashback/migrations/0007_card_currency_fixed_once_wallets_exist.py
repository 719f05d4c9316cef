"""The database refuses a change of a card's currency once a wallet references the card.

Wallet balances and ledger amounts are amounts in the card's currency; the model's validation
and the admin refuse the change, and these triggers hold it for every other writer (a queryset
`update()`, a shell, SQL). A card's first wallet takes a share lock on the card, so a currency
change racing it waits for it and then sees it.
"""

from django.db import migrations

FORWARD = """
CREATE FUNCTION cashback_card_currency_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.currency IS DISTINCT FROM OLD.currency
       AND EXISTS (SELECT 1 FROM cashback_wallet WHERE card_id = OLD.id) THEN
        RAISE EXCEPTION 'card % has wallets: its currency % cannot change', OLD.id, OLD.currency
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER cashback_card_currency_fixed
    BEFORE UPDATE OF currency ON cards_card
    FOR EACH ROW EXECUTE FUNCTION cashback_card_currency_fixed();

CREATE FUNCTION cashback_wallet_shares_card_lock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM cards_card WHERE id = NEW.card_id FOR SHARE;
    RETURN NEW;
END
$$;
CREATE TRIGGER cashback_wallet_shares_card_lock
    BEFORE INSERT ON cashback_wallet
    FOR EACH ROW EXECUTE FUNCTION cashback_wallet_shares_card_lock();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS cashback_wallet_shares_card_lock ON cashback_wallet;
DROP FUNCTION IF EXISTS cashback_wallet_shares_card_lock();
DROP TRIGGER IF EXISTS cashback_card_currency_fixed ON cards_card;
DROP FUNCTION IF EXISTS cashback_card_currency_fixed();
"""


class Migration(migrations.Migration):

    dependencies = [
        ("cards", "0001_initial"),
        ("cashback", "0006_adjustment_requests_and_approvers"),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
