"""An existing database migrates in place: a database at the layout before the layered packages
(idempotency records in cashback, one-time codes in apps_auth, members' identity kept by the API
alone), filled with every kind of entry, migrates forward with nothing lost; so does one whose
lot movements, adjustment requests and webhook deliveries did not carry their app yet."""

from datetime import timedelta
from decimal import Decimal
from importlib import import_module
from uuid import uuid4

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from apps_auth.models import IdempotencyRecord
from cashback.ledger_check import ledger_verify
from cashback.models import AdjustmentRequest, LedgerEntry, Lot, LotMovement, Wallet
from cashback.services import cashback_earn
from members.models import Member, OtpChallenge
from members.services import MemberRef
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db(transaction=True)

# The last migrations of the release before the layered packages.
OLD_LAYOUT = [
    ("apps_auth", "0002_otpchallenge"),
    ("members", "0002_member_member_email_member_member_phone"),
    ("cards", "0001_initial"),
    ("cashback", "0004_wallet_entries_count"),
]


@pytest.fixture
def old_layout():
    """The database migrated back to the old layout; its historical models. Whatever the test
    does, the database is at the latest migrations again afterwards."""
    executor = MigrationExecutor(connection)
    executor.migrate(OLD_LAYOUT)
    try:
        yield executor.loader.project_state(OLD_LAYOUT).apps
    finally:
        migrate_to_latest()


def migrate_to_latest() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def fill(apps) -> dict:
    """Rows as the old release wrote them: an app and key, a card, two members (one typed in by
    hand in the admin, mixed case and a local phone number), earns, a redeem under an
    Idempotency-Key, a refund of an earning, a staff adjustment and a one-time code."""
    App = apps.get_model("apps_auth", "App")
    ApiKey = apps.get_model("apps_auth", "ApiKey")
    OldOtpChallenge = apps.get_model("apps_auth", "OtpChallenge")
    Card = apps.get_model("cards", "Card")
    OldMember = apps.get_model("members", "Member")
    OldWallet = apps.get_model("cashback", "Wallet")
    OldEntry = apps.get_model("cashback", "LedgerEntry")
    OldRecord = apps.get_model("cashback", "IdempotencyRecord")

    app = App.objects.create(app_id="app_old", name="Old merchant", scopes=["cashback_write"])
    ApiKey.objects.create(app=app, prefix="test_oldkey01", key_hash="0" * 64)
    card = Card.objects.create(app=app, name="Card", cashback_percentage=Decimal(5))
    amira = OldMember.objects.create(app=app, email="amira@example.com")
    bob = OldMember.objects.create(app=app, email="Bob@Example.COM", phone="20 123 456")
    blank = OldMember.objects.create(app=app, name="Blank fields", email="", phone="")
    now = timezone.now()
    record = OldRecord.objects.create(
        app=app,
        key="redeem-1",
        request_fingerprint="f" * 64,
        state="completed",
        lease_until=now,
        response_status=200,
        response_body='{"success":true}',
    )
    OldOtpChallenge.objects.create(
        app=app,
        member=bob,
        challenge_id="otp_old",
        channel="sms",
        destination_masked="+216*****56",
        code_hash="c" * 64,
        expires_at=now + timedelta(minutes=5),
    )

    balances = {}
    for member, moves in (
        (amira, [("earning", "10.000"), ("redemption", "-4.000"), ("adjustment", "1.500")]),
        (bob, [("earning", "2.500"), ("earning", "5.000"), ("refund", "-1.250")]),
    ):
        wallet = OldWallet.objects.create(app=app, member=member, card=card)
        balance, earning = Decimal(0), None
        for entry_type, amount in moves:
            balance += Decimal(amount)
            entry = OldEntry.objects.create(
                app=app,
                wallet=wallet,
                card=card,
                entry_type=entry_type,
                event=f"cashback_{entry_type}",
                amount=Decimal(amount),
                balance_after=balance,
                purchase_amount=Decimal(amount) * 20 if entry_type == "earning" else None,
                original_entry=earning if entry_type == "refund" else None,
                idempotency_record=record if entry_type == "redemption" else None,
            )
            earning = entry if entry_type == "earning" else earning
        OldWallet.objects.filter(pk=wallet.pk).update(balance=balance, entries_count=len(moves))
        balances[member.pk] = balance
    return {"balances": balances, "record": record.pk, "bob": bob.pk, "blank": blank.pk}


def test_a_database_of_the_old_layout_migrates_with_nothing_lost(old_layout):
    before = fill(old_layout)
    # Migrating back put the moved models' content types under their old apps again.
    moved = [
        ContentType.objects.get(app_label="cashback", model="idempotencyrecord").pk,
        ContentType.objects.get(app_label="apps_auth", model="otpchallenge").pk,
    ]

    migrate_to_latest()

    assert ledger_verify().mismatches == []  # lots included
    assert {w.member_id: w.balance for w in Wallet.objects.all()} == before["balances"]
    assert LedgerEntry.objects.count() == 6
    redemption = LedgerEntry.objects.get(entry_type="redemption")
    # Each credit has its lot, and each debit took from them as the services do now: the
    # redemption can be reversed into its lots, the refund came out of its earning's lot first.
    assert Lot.objects.count() == LedgerEntry.objects.filter(amount__gt=0).count()
    assert -sum(m.amount for m in redemption.movements.all()) == -redemption.amount
    refund_movements = list(LedgerEntry.objects.get(entry_type="refund").movements.all())
    assert refund_movements[0].lot.source_id == (
        LedgerEntry.objects.get(entry_type="refund").original_entry_id
    )
    assert redemption.idempotency_record_id == before["record"]
    assert IdempotencyRecord.objects.get(key="redeem-1").entry == redemption
    adjustment = LedgerEntry.objects.get(entry_type="adjustment")
    assert (adjustment.amount, adjustment.approved_by) == (Decimal("1.5"), None)
    refund = LedgerEntry.objects.get(entry_type="refund")
    assert refund.original_entry is not None
    assert refund.original_entry.entry_type == "earning"
    # Entries are numbered in each wallet, and per type, in the order history shows them; the
    # next entry follows on.
    for wallet in Wallet.objects.all():
        in_order = list(wallet.entries.order_by("created_at", "id"))
        assert [e.sequence for e in in_order] == list(range(1, len(in_order) + 1))
        for entry_type in {e.entry_type for e in in_order}:
            of_type = [e.type_sequence for e in in_order if e.entry_type == entry_type]
            assert of_type == list(range(1, len(of_type) + 1))
    wallet = redemption.wallet
    entries_before = wallet.entries.count()
    assert (
        cashback_earn(
            app=wallet.app,
            card=wallet.card,
            member_ref=MemberRef(member_id=wallet.member_id),
            purchase_amount=Decimal(100),
        ).entry.sequence
        == entries_before + 1
    )
    challenge = OtpChallenge.objects.get(challenge_id="otp_old")
    assert challenge.member_id == before["bob"]
    # The member typed in by hand now has a lower-cased email and an E.164 phone.
    bob = Member.objects.get(pk=before["bob"])
    assert (bob.email, str(bob.phone)) == ("bob@example.com", "+21620123456")
    # Blank email and phone are no identity: stored as NULL.
    assert Member.objects.values_list("email", "phone").get(pk=before["blank"]) == (None, None)
    # Permissions and admin history follow the moved models: their content types move along.
    assert sorted(ContentType.objects.filter(pk__in=moved).values_list("app_label", "model")) == [
        ("apps_auth", "idempotencyrecord"),
        ("members", "otpchallenge"),
    ]


def test_members_who_would_merge_stop_the_migration_and_are_named(old_layout):
    fill(old_layout)
    OldMember = old_layout.get_model("members", "Member")
    app_id = OldMember.objects.get(email="amira@example.com").app_id
    twin = OldMember.objects.create(app_id=app_id, email="AMIRA@example.com")
    phone_twin = OldMember.objects.create(app_id=app_id, phone="+216 20 123 456")
    unreadable = OldMember.objects.create(app_id=app_id, phone="call me")

    identity = import_module("members.migrations.0004_member_identity")

    try:
        with pytest.raises(identity.IdentityConflict) as refused:
            MigrationExecutor(connection).migrate([("members", "0004_member_identity")])

        message = str(refused.value)
        amira = OldMember.objects.get(email="amira@example.com")
        bob = OldMember.objects.get(email="Bob@Example.COM")
        assert f"members {amira.pk}, {twin.pk} share the email amira@example.com" in message
        assert f"members {bob.pk}, {phone_twin.pk} share the phone +21620123456" in message
        assert f"member {unreadable.pk}: phone 'call me' is not a valid number" in message
        # Nothing was merged or rewritten.
        assert OldMember.objects.filter(email="AMIRA@example.com").exists()
        assert OldMember.objects.get(pk=bob.pk).phone == "20 123 456"
    finally:  # an operator's fix, so that the database can migrate again
        OldMember.objects.filter(pk__in=[twin.pk, phone_twin.pk, unreadable.pk]).delete()


# The last migrations before lot movements, adjustment requests and deliveries carried their app.
BEFORE_APP_COLUMNS = [
    ("apps_auth", "0006_app_otp_hourly_quota"),
    ("cashback", "0009_lifecycle"),
    ("webhooks", "0002_events_and_deliveries"),
]


@pytest.fixture
def before_app_columns():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE_APP_COLUMNS)
    try:
        yield executor.loader.project_state(BEFORE_APP_COLUMNS).apps
    finally:
        migrate_to_latest()


def fill_without_app_columns(apps) -> dict:
    """Two apps' movements, adjustment requests and deliveries, as the release before wrote them;
    returns each row's parent's app by table and id."""
    App = apps.get_model("apps_auth", "App")
    Card = apps.get_model("cards", "Card")
    OldMember = apps.get_model("members", "Member")
    OldWallet = apps.get_model("cashback", "Wallet")
    OldEntry = apps.get_model("cashback", "LedgerEntry")
    OldLot = apps.get_model("cashback", "Lot")
    OldMovement = apps.get_model("cashback", "LotMovement")
    OldRequest = apps.get_model("cashback", "AdjustmentRequest")
    Endpoint = apps.get_model("webhooks", "WebhookEndpoint")
    Event = apps.get_model("webhooks", "WebhookEvent")
    Delivery = apps.get_model("webhooks", "WebhookDelivery")
    User = apps.get_model("auth", "User")
    staff = User.objects.create(username="support")
    now = timezone.now()
    expected: dict = {"movement": {}, "request": {}, "delivery": {}}
    for n in range(2):
        app = App.objects.create(app_id=f"app_before_{n}", name=f"Merchant {n}", scopes=[])
        card = Card.objects.create(app=app, name="Card", cashback_percentage=Decimal(5))
        member = OldMember.objects.create(app=app, email=f"m{n}@example.com")
        wallet = OldWallet.objects.create(app=app, member=member, card=card, balance=Decimal(3))
        common = {"app": app, "wallet": wallet, "card": card}
        earning = OldEntry.objects.create(
            **common, entry_type="earning", event="cashback_earned", amount=Decimal(5),
            balance_after=Decimal(5), sequence=1, type_sequence=1,
        )  # fmt: skip
        redemption = OldEntry.objects.create(
            **common, entry_type="redemption", event="cashback_redeemed", amount=Decimal(-2),
            balance_after=Decimal(3), sequence=2, type_sequence=1,
        )  # fmt: skip
        lot = OldLot.objects.create(
            app=app, wallet=wallet, source=earning, remaining=Decimal(3), available_at=now
        )
        movement = OldMovement.objects.create(entry=redemption, lot=lot, amount=Decimal(-2))
        request = OldRequest.objects.create(
            wallet=wallet, amount=Decimal(50), reason="Goodwill", token=uuid4(),
            requested_by=staff,
        )  # fmt: skip
        endpoint = Endpoint.objects.create(app=app, url="https://example.com/hook", secret="s")
        event = Event.objects.create(app=app, event_type="cashback.earned", body="{}")
        delivery = Delivery.objects.create(event=event, endpoint=endpoint)
        expected["movement"][movement.pk] = app.pk
        expected["request"][request.pk] = app.pk
        expected["delivery"][delivery.pk] = app.pk
    return expected


def test_movements_requests_and_deliveries_take_their_parents_app_with_nothing_lost(
    before_app_columns,
):
    expected = fill_without_app_columns(before_app_columns)

    migrate_to_latest()

    assert dict(LotMovement.objects.values_list("pk", "app_id")) == expected["movement"]
    assert dict(AdjustmentRequest.objects.values_list("pk", "app_id")) == expected["request"]
    assert dict(WebhookDelivery.objects.values_list("pk", "app_id")) == expected["delivery"]
    # Each row's app is its parent's.
    for movement in LotMovement.objects.select_related("entry", "lot"):
        assert movement.app_id == movement.lot.app_id == movement.entry.app_id
    for request in AdjustmentRequest.objects.select_related("wallet"):
        assert request.app_id == request.wallet.app_id
    for delivery in WebhookDelivery.objects.select_related("event", "endpoint"):
        assert delivery.app_id == delivery.event.app_id == delivery.endpoint.app_id


def test_the_ledger_s_looser_check_is_validated_outside_the_migration_that_swaps_it():
    """Swapping the check takes the ledger's table lock for the swap alone (NOT VALID, with a
    lock timeout); reading every entry to validate it happens in a migration that runs outside
    a transaction, which lets writes go on meanwhile."""
    swap = import_module("cashback.migrations.0013_settle_at_read_time_and_refund_claims")
    validate = import_module("cashback.migrations.0014_lot_wallet_held")
    swap_sql = " ".join(" ".join(op.sql) for op in swap.Migration.operations if hasattr(op, "sql"))
    assert "NOT VALID" in swap_sql
    assert "lock_timeout" in swap_sql
    assert "VALIDATE" not in swap_sql
    assert swap.Migration.atomic
    assert not validate.Migration.atomic
    assert any(
        "VALIDATE CONSTRAINT" in getattr(op, "sql", "") for op in validate.Migration.operations
    )
