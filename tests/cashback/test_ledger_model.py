"""A stateful property test: the cashback lifecycle (earn, redeem, refund, release, expiry,
reversal, staff adjustments, replays and time passing) against a model of each wallet.

The model keeps each wallet's spendable and pending balance and each lot's pending and remaining
cashback, and applies the contract's rules to them. It takes the lots' `available_at` and
`expires_at` from the database (they count from the entries' real `created_at`) and only checks
that they follow the card's days. Release and expiry run `as_of` a model clock that the machine
moves forward; every operation first settles its wallet at the real now (releases what is due,
writes off what expired), and a reversal writes off what goes back into lots expired at the real
now, so a rule moves a lot's expiry into the real past to reach those cases.
"""

import itertools
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from rest_framework.test import APIClient

from apps_auth.services import api_key_create
from cards.models import Card
from cashback.errors import InsufficientBalance
from cashback.ledger_check import ledger_verify
from cashback.models import AdjustmentStatus, EntryType, LedgerEntry, Lot, LotMovement, Wallet
from cashback.services import cashback_expire_due, cashback_release_due
from cashback.services.adjust import cashback_adjust
from members.tokens import member_token_issue
from tests.factories import AppFactory, CardFactory, MemberFactory
from webhooks.models import EventType, WebhookEvent

API = "/api/v1/cashback/cashback"
PERCENT = Decimal("3.5")
MILLIME = Decimal("0.001")
ZERO = Decimal(0)
# Each card's holding and expiry days: one plain, one that holds and expires, one that expires.
CARDS = {"plain": (0, None), "held": (3, 10), "expiring": (0, 4)}
keys = itertools.count()
staff_names = itertools.count()
amounts = st.decimals(min_value=MILLIME, max_value=Decimal(2000), places=3)
spends = st.decimals(min_value=MILLIME, max_value=Decimal(80), places=3)
adjustments = st.decimals(min_value=Decimal(-20), max_value=Decimal(20), places=3).filter(
    lambda amount: amount != 0
)
cards = st.sampled_from(sorted(CARDS))
time_steps = st.one_of(
    st.integers(min_value=1, max_value=48).map(lambda hours: timedelta(hours=hours)),
    st.integers(min_value=1, max_value=6).map(lambda days: timedelta(days=days)),
)


def expected_cashback(amount: Decimal) -> Decimal:
    return (amount * PERCENT / 100).quantize(MILLIME, rounding=ROUND_HALF_UP)


def number(value) -> Decimal:
    """An amount of an answer, as a decimal."""
    return Decimal(str(value))


@dataclass
class ModelLot:
    pk: int
    source_id: int
    pending: Decimal
    remaining: Decimal
    available_at: datetime
    expires_at: datetime | None
    warned: bool = False

    def expired_at(self, moment: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= moment


@dataclass
class ModelEarning:
    entry_id: int
    lot_pk: int
    purchase: Decimal
    credited: Decimal
    refunded: Decimal = ZERO  # refund amounts against it
    claimed: Decimal = ZERO  # what its refunds set out to take back, taken or not


@dataclass
class ModelRedemption:
    entry_id: int
    amount: Decimal
    taken: dict[int, Decimal]  # lot -> what came out of it
    reversed: bool = False
    window_closed: bool = False


@dataclass
class ModelClaim:
    """What a refund could not take back from the balance, and is still owed."""

    entry_id: int
    owed: Decimal
    lot_pk: int | None  # the named earning's lot, which settles it first


@dataclass
class ModelWallet:
    card: Card
    holding_days: int
    expiry_days: int | None
    balance: Decimal = ZERO
    pending: Decimal = ZERO
    lots: dict[int, ModelLot] = field(default_factory=dict)
    earnings: dict[int, ModelEarning] = field(default_factory=dict)
    redemptions: dict[int, ModelRedemption] = field(default_factory=dict)
    claims: list[ModelClaim] = field(default_factory=list)
    # Every earning's purchase and cashback, and what every refund set out to take back.
    purchased: Decimal = ZERO
    credited: Decimal = ZERO
    claimed: Decimal = ZERO

    def settle(self, moment: datetime) -> None:
        """Releases every held lot due at `moment`, then writes off every lot expired at it."""
        for lot in self.lots.values():
            if lot.pending > 0 and lot.available_at <= moment:
                lot.remaining += lot.pending
                self.balance += lot.pending
                self.pending -= lot.pending
                lot.pending = ZERO
        for lot in self.lots.values():
            if lot.remaining > 0 and lot.expired_at(moment):
                self.balance -= lot.remaining
                lot.remaining = ZERO

    def settled_balance(self, moment: datetime) -> Decimal:
        """The spendable balance once settled at `moment`, the wallet left as it is."""
        due = sum((lot.pending for lot in self.lots.values() if lot.available_at <= moment), ZERO)
        gone = sum(
            (
                lot.remaining + (lot.pending if lot.available_at <= moment else ZERO)
                for lot in self.lots.values()
                if lot.expired_at(moment)
            ),
            ZERO,
        )
        return self.balance + due - gone

    def share(self, amount: Decimal) -> Decimal:
        """What the earnings (all at the card's one rate) credited for `amount` of their
        purchases, at their own average, never more than they credited and refunds did not
        claim."""
        unclaimed = self.credited - self.claimed
        if self.purchased <= 0 or unclaimed <= 0:
            return ZERO
        share = (self.credited * min(amount, self.purchased) / self.purchased).quantize(
            MILLIME, rounding=ROUND_HALF_UP
        )
        return min(share, unclaimed)

    def spend(self, amount: Decimal, first: int | None = None) -> dict[int, Decimal]:
        """Takes `amount` of spendable cashback out of the lots: `first`, then the oldest."""
        taken: dict[int, Decimal] = {}
        live = [lot for lot in self.lots.values() if lot.remaining > 0]
        for lot in sorted(live, key=lambda lot: (lot.pk != first, lot.available_at, lot.pk)):
            if amount == 0:
                break
            take = min(amount, lot.remaining)
            lot.remaining -= take
            amount -= take
            taken[lot.pk] = take
        assert amount == 0, "the lots add up to the spendable balance"
        self.balance -= sum(taken.values(), start=ZERO)
        return taken

    def take_pending(self, amount: Decimal, named: int | None = None) -> None:
        """Takes `amount` of held cashback: from the named lot, else newest earning first."""
        held = [lot for lot in self.lots.values() if lot.pending > 0]
        if named is not None:
            held = [self.lots[named]]
        self.pending -= amount
        for lot in sorted(held, key=lambda lot: -lot.source_id):
            take = min(amount, lot.pending)
            lot.pending -= take
            amount -= take
        assert amount == 0


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        # Each run of the machine starts from the database as the test found it (`teardown`):
        # a bare savepoint, which the services' durable transactions may nest in.
        self.savepoint = transaction.savepoint()
        self.app = AppFactory.create()
        self.wallets = {
            name: ModelWallet(
                card=CardFactory.create(
                    app=self.app,
                    cashback_percentage=PERCENT,
                    cashback_min_amount=0,
                    cashback_max_amount=None,
                    cashback_holding_days=holding,
                    cashback_expiry_days=expiry,
                ),
                holding_days=holding,
                expiry_days=expiry,
            )
            for name, (holding, expiry) in CARDS.items()
        }
        self.member = MemberFactory.create(app=self.app)
        self.staff = User.objects.create_superuser(f"staff-{next(staff_names)}", password="x")
        self.client = APIClient(
            headers={
                "X-App-Id": self.app.app_id,
                "X-Api-Key": api_key_create(app=self.app).raw_key,
            }
        )
        self.client.default_format = "json"
        self.token = member_token_issue(app=self.app, member_id=self.member.pk).token
        # The time release and expiry run at: now, and later as the machine moves it.
        self.clock = timezone.now()
        # Every request sent: path, body, headers, key, and the response it got.
        self.sent: list[tuple[str, dict, dict, str, int, bytes]] = []

    def teardown(self):
        transaction.savepoint_rollback(self.savepoint)

    def post(self, path: str, body: dict, **headers):
        key = f"key-{next(keys)}"
        response = self.client.post(
            f"{API}/{path}", body, headers={"Idempotency-Key": key, **headers}
        )
        self.sent.append((path, body, headers, key, response.status_code, response.content))
        return response

    def stored_wallet(self, name: str) -> Wallet | None:
        return Wallet.objects.filter(member=self.member, card=self.wallets[name].card).first()

    def lot_opened(self, wallet: ModelWallet, entry: LedgerEntry, held: bool) -> ModelLot:
        """The model's lot for a credit, with the dates the database gave it; checks that they
        follow the card's days."""
        lot = Lot.objects.get(source=entry)
        holding = timedelta(days=wallet.holding_days if held else 0)
        assert lot.available_at == entry.created_at + holding
        if wallet.expiry_days is None:
            assert lot.expires_at is None
        else:
            assert lot.expires_at == lot.available_at + timedelta(days=wallet.expiry_days)
        credit = entry.amount + entry.pending_amount
        model = ModelLot(
            pk=lot.pk,
            source_id=entry.pk,
            pending=credit if held else ZERO,
            remaining=ZERO if held else credit,
            available_at=lot.available_at,
            expires_at=lot.expires_at,
        )
        wallet.lots[lot.pk] = model
        return model

    def redemptions(self) -> list[tuple[ModelWallet, ModelRedemption]]:
        return [(w, r) for w in self.wallets.values() for r in w.redemptions.values()]

    @initialize(
        purchases=st.lists(amounts, min_size=len(CARDS), max_size=len(CARDS)), data=st.data()
    )
    def opening(self, purchases, data):
        """One earn on each card, and a redemption where it is spendable at once, to start
        with: something to spend, refund and reverse."""
        for name, amount in zip(sorted(CARDS), purchases, strict=True):
            self.earn(name, amount)
            if self.wallets[name].holding_days == 0:
                self.redeem(name, data)

    @rule(name=cards, amount=amounts)
    def earn(self, name, amount):
        wallet = self.wallets[name]
        response = self.post(
            "earn",
            {"card_id": wallet.card.pk, "member_id": self.member.pk, "purchase_amount": amount},
        )
        cashback = expected_cashback(amount)
        if cashback == 0:
            assert response.status_code == 422
            return
        assert response.status_code == 200, response.content
        wallet.settle(timezone.now())
        wallet.purchased += amount
        wallet.credited += cashback
        data = response.json()["data"]
        held = wallet.holding_days > 0
        assert data["status"] == ("pending" if held else "available")
        entry = LedgerEntry.objects.get(pk=data["transaction_id"])
        lot = self.lot_opened(wallet, entry, held)
        if held:
            wallet.pending += cashback
        else:
            wallet.balance += cashback
        wallet.earnings[entry.pk] = ModelEarning(
            entry_id=entry.pk, lot_pk=lot.pk, purchase=amount, credited=cashback
        )
        assert (number(data["new_balance"]), number(data["pending_balance"])) == (
            wallet.balance,
            wallet.pending,
        )

    @rule(name=cards, data=st.data())
    def redeem(self, name, data):
        wallet = self.wallets[name]
        # Often within the balance, sometimes past it.
        within = st.decimals(min_value=MILLIME, max_value=max(wallet.balance, MILLIME), places=3)
        amount = data.draw(within | spends)
        response = self.post(
            "redeem",
            {"card_id": wallet.card.pk, "amount": amount},
            **{"X-Member-Token": self.token},
        )
        now = timezone.now()
        if amount > wallet.settled_balance(now):
            # Refused: nothing changes, the settling included.
            assert response.status_code == 422
            assert response.json()["error"]["code"] == "insufficient_balance"
            return
        assert response.status_code == 200, response.content
        wallet.settle(now)
        entry_id = response.json()["data"]["transaction_id"]
        taken = wallet.spend(amount)
        wallet.redemptions[entry_id] = ModelRedemption(
            entry_id=entry_id, amount=amount, taken=taken
        )
        moved = dict(LotMovement.objects.filter(entry_id=entry_id).values_list("lot_id", "amount"))
        assert moved == {lot: -take for lot, take in taken.items()}

    @rule(name=cards, amount=amounts, deduct=st.none() | spends)
    def refund(self, name, amount, deduct):
        """A refund naming no earning: held cashback first, newest earning first, then the
        spendable balance, oldest lots first; never below zero."""
        wallet = self.wallets[name]
        body = {"card_id": wallet.card.pk, "member_id": self.member.pk, "refund_amount": amount}
        if deduct is not None:
            body["cashback_to_deduct"] = deduct
        response = self.post("refund", body)
        assert response.status_code == 200, response.content
        wallet.settle(timezone.now())
        if deduct is None:
            to_deduct = max(expected_cashback(amount), wallet.share(amount))
        else:
            to_deduct = deduct
        from_pending = min(to_deduct, wallet.pending)
        from_balance = min(to_deduct - from_pending, wallet.balance)
        wallet.take_pending(from_pending)
        wallet.spend(from_balance)
        self.refund_recorded(
            response, wallet, amount, to_deduct, from_pending + from_balance, lot_pk=None
        )
        self.refund_answer_check(
            response.json()["data"], wallet, from_pending, from_balance, to_deduct
        )

    @precondition(lambda self: any(w.earnings for w in self.wallets.values()))
    @rule(data=st.data())
    def refund_of_an_earning(self, data):
        """A refund naming an earning: its share of the earning's cashback, all refunds of it
        within its purchase; from its pending part while it is held, else from the spendable
        balance, its own lot first."""
        wallet = data.draw(st.sampled_from([w for w in self.wallets.values() if w.earnings]))
        earning = data.draw(st.sampled_from(list(wallet.earnings.values())))
        rest = earning.purchase - earning.refunded
        kind = data.draw(st.sampled_from(["part", "rest", "more"] if rest > 0 else ["more"]))
        if kind == "part":
            amount = data.draw(st.decimals(min_value=MILLIME, max_value=rest, places=3))
        else:
            amount = rest if kind == "rest" else rest + MILLIME
        response = self.post(
            "refund",
            {
                "card_id": wallet.card.pk,
                "member_id": self.member.pk,
                "refund_amount": amount,
                "original_transaction_id": earning.entry_id,
            },
        )
        if kind == "more":
            assert response.status_code == 422
            assert response.json()["error"]["code"] == "refund_exceeds_purchase"
            return
        assert response.status_code == 200, response.content
        wallet.settle(timezone.now())
        unclaimed = earning.credited - earning.claimed
        if amount == rest:
            to_deduct = unclaimed
        else:
            share = (earning.credited * amount / earning.purchase).quantize(
                MILLIME, rounding=ROUND_HALF_UP
            )
            to_deduct = min(share, unclaimed)
        earning.refunded += amount
        earning.claimed += to_deduct
        lot = wallet.lots[earning.lot_pk]
        if lot.pending > 0:
            from_pending, from_balance = min(to_deduct, lot.pending), ZERO
            wallet.take_pending(from_pending, named=lot.pk)
            # What the held part could not give is not the balance's to give.
            wallet.claimed += to_deduct
        else:
            from_pending, from_balance = ZERO, min(to_deduct, wallet.balance)
            wallet.spend(from_balance, first=lot.pk)
            self.refund_recorded(response, wallet, amount, to_deduct, from_balance, lot_pk=lot.pk)
        self.refund_answer_check(
            response.json()["data"], wallet, from_pending, from_balance, to_deduct
        )

    def refund_recorded(self, response, wallet, amount, to_deduct, taken, *, lot_pk):
        """The refund counts toward the wallet's totals; what it could not take is owed."""
        wallet.claimed += to_deduct
        if to_deduct > taken:
            entry_id = response.json()["data"]["transaction_id"]
            wallet.claims.append(
                ModelClaim(entry_id=entry_id, owed=to_deduct - taken, lot_pk=lot_pk)
            )

    def refund_answer_check(self, data, wallet, from_pending, from_balance, to_deduct):
        assert number(data["cashback_deducted"]) == from_pending + from_balance
        assert number(data["pending_deducted"]) == from_pending
        assert number(data["cashback_not_recovered"]) == to_deduct - from_pending - from_balance
        assert (number(data["new_balance"]), number(data["pending_balance"])) == (
            wallet.balance,
            wallet.pending,
        )

    @rule(step=time_steps)
    def time_passes(self, step):
        self.clock += step

    @rule(step=time_steps)
    def the_worker_comes_by_later(self, step):
        """Time passes, then the worker releases and expires what is due, in that order."""
        self.clock += step
        self.release()
        self.expire()

    @rule()
    def release(self):
        """Held lots whose `available_at` has come are released, each once, whole."""
        released = {}
        for wallet in self.wallets.values():
            for lot in wallet.lots.values():
                if lot.pending > 0 and lot.available_at <= self.clock:
                    released[lot.source_id] = lot.pending
                    lot.remaining += lot.pending
                    wallet.balance += lot.pending
                    wallet.pending -= lot.pending
                    lot.pending = ZERO
        result = cashback_release_due(as_of=self.clock)
        assert (result.released, result.amount) == (len(released), sum(released.values(), ZERO))
        entries = LedgerEntry.objects.filter(
            entry_type=EntryType.RELEASE, original_entry_id__in=released
        ).values_list("original_entry_id", "amount")
        assert dict(entries) == released
        assert len(entries) == len(released)

    @rule()
    def expire(self):
        """The rest of each lot whose `expires_at` has come is written off; then each lot that
        expires within the warning days is announced, once."""
        expired, written_off = 0, ZERO
        for wallet in self.wallets.values():
            for lot in wallet.lots.values():
                if lot.remaining > 0 and lot.expired_at(self.clock):
                    expired, written_off = expired + 1, written_off + lot.remaining
                    wallet.balance -= lot.remaining
                    lot.remaining = ZERO
        lots = [lot for wallet in self.wallets.values() for lot in wallet.lots.values()]
        horizon = self.clock + timedelta(days=django_settings.CASHBACK_EXPIRY_WARNING_DAYS)
        warned = [
            lot
            for lot in lots
            if lot.remaining > 0
            and not lot.warned
            and lot.expires_at is not None
            and self.clock < lot.expires_at <= horizon
        ]
        for lot in warned:
            lot.warned = True
        result = cashback_expire_due(as_of=self.clock)
        assert (result.expired, result.amount, result.warned) == (expired, written_off, len(warned))
        warnings = Counter(
            json.loads(body)["data"]["original_transaction_id"]
            for body in WebhookEvent.objects.filter(
                app=self.app, event_type=EventType.EXPIRING
            ).values_list("body", flat=True)
        )
        assert warnings == Counter(lot.source_id for lot in lots if lot.warned)

    @precondition(lambda self: any(w.redemptions for w in self.wallets.values()))
    @rule(data=st.data())
    def reverse(self, data):
        """A redemption reversed goes back into the lots it came from, once, within the window;
        what goes back into a lot expired by now is written off at once."""
        wallet, redemption = data.draw(st.sampled_from(self.redemptions()))
        now = timezone.now()
        response = self.post(
            "reverse", {"card_id": wallet.card.pk, "transaction_id": redemption.entry_id}
        )
        if redemption.reversed:
            assert response.status_code == 409
            assert response.json()["error"]["code"] == "already_reversed"
            return
        if redemption.window_closed:
            assert response.status_code == 422
            assert response.json()["error"]["code"] == "reversal_window_closed"
            return
        assert response.status_code == 200, response.content
        wallet.settle(now)
        redemption.reversed = True
        written_off = ZERO
        for pk, take in redemption.taken.items():
            lot = wallet.lots[pk]
            lot.remaining += take
            if lot.expired_at(now):
                written_off += lot.remaining
                lot.remaining = ZERO
        wallet.balance += redemption.amount - written_off
        # What stays settles the claims of refunds posted since the redemption, oldest first.
        claims = [c for c in wallet.claims if c.entry_id > redemption.entry_id and c.owed > 0]
        left = settled = min(sum((c.owed for c in claims), ZERO), redemption.amount - written_off)
        for claim in claims:
            take = min(claim.owed, left)
            claim.owed -= take
            left -= take
            if take:
                wallet.spend(take, first=claim.lot_pk)
        answer = response.json()["data"]
        assert number(answer["amount"]) == redemption.amount
        assert number(answer["expired_amount"]) == written_off
        assert number(answer["recovered_amount"]) == settled
        assert number(answer["new_balance"]) == wallet.balance

    @precondition(
        lambda self: any(not r.window_closed for _, r in self.redemptions()),
    )
    @rule(data=st.data())
    def reversal_window_closes(self, data):
        """The window runs on the real clock: the redemption is moved into the past."""
        _, redemption = data.draw(
            st.sampled_from([(w, r) for w, r in self.redemptions() if not r.window_closed])
        )
        LedgerEntry.objects.filter(pk=redemption.entry_id).update(
            created_at=timezone.now()
            - timedelta(hours=django_settings.CASHBACK_REVERSAL_WINDOW_HOURS, minutes=1)
        )
        redemption.window_closed = True

    @precondition(
        lambda self: any(
            lot.expires_at is not None for w in self.wallets.values() for lot in w.lots.values()
        )
    )
    @rule(data=st.data())
    def lot_expiry_passes_in_real_time(self, data):
        """A lot's expiry moved into the real past, as if it had expired since a redemption
        spent it: what a reversal gives back to it is written off at once."""
        wallet = data.draw(
            st.sampled_from(
                [w for w in self.wallets.values() if any(lot.expires_at for lot in w.lots.values())]
            )
        )
        lot = data.draw(st.sampled_from([lot for lot in wallet.lots.values() if lot.expires_at]))
        lot.expires_at = timezone.now() - timedelta(minutes=1)
        Lot.objects.filter(pk=lot.pk).update(expires_at=lot.expires_at)

    @rule(name=cards, amount=adjustments)
    def adjust(self, name, amount):
        """A staff adjustment, small enough to apply at once: a credit is a lot of its own,
        spendable at once; a debit spends the oldest lots and never goes below zero."""
        wallet = self.wallets[name]
        stored = self.stored_wallet(name)
        if stored is None:
            return
        now = timezone.now()
        if wallet.settled_balance(now) + amount < 0:
            with pytest.raises(InsufficientBalance):
                cashback_adjust(wallet=stored, amount=amount, reason="test", staff_user=self.staff)
            return
        adjustment = cashback_adjust(
            wallet=stored, amount=amount, reason="test", staff_user=self.staff
        )
        assert adjustment.request.status == AdjustmentStatus.APPLIED
        wallet.settle(now)
        entry = adjustment.entry
        assert entry is not None
        if amount > 0:
            self.lot_opened(wallet, entry, held=False)
            wallet.balance += amount
        else:
            taken = wallet.spend(-amount)
            moved = dict(LotMovement.objects.filter(entry=entry).values_list("lot_id", "amount"))
            assert moved == {lot: -take for lot, take in taken.items()}

    @precondition(lambda self: self.sent)
    @rule(data=st.data())
    def replay(self, data):
        path, body, headers, key, status, content = data.draw(st.sampled_from(self.sent))
        response = self.client.post(
            f"{API}/{path}", body, headers={"Idempotency-Key": key, **headers}
        )
        assert response.status_code == status
        assert response["Idempotent-Replayed"] == "true"
        assert response.content == content

    @invariant()
    def balances_and_lots_match_the_model_and_the_ledger(self):
        for name, wallet in self.wallets.items():
            stored = self.stored_wallet(name)
            balances = (stored.balance, stored.pending_balance) if stored else (ZERO, ZERO)
            assert balances == (wallet.balance, wallet.pending)
            assert min(wallet.balance, wallet.pending) >= 0
            entries = LedgerEntry.objects.filter(wallet=stored) if stored else []
            assert sum((e.amount for e in entries), ZERO) == balances[0]
            lots = Lot.objects.filter(wallet=stored) if stored else []
            assert {
                lot.pk: (lot.pending, lot.remaining, lot.warned_at is not None) for lot in lots
            } == {lot.pk: (lot.pending, lot.remaining, lot.warned) for lot in wallet.lots.values()}
        assert ledger_verify().mismatches == []


@pytest.mark.django_db
def test_ledger_matches_a_model_of_balances_under_any_sequence():
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=40,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
