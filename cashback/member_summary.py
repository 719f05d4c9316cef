"""What the member page of the back office shows of a member's cashback: every wallet with its
balances as the API's balance gives them, the member's tier on each card, the soonest expiries
and the latest entries. A few statements, whatever the member's history."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from cards.models import Card
from cashback.models import LedgerEntry, Wallet
from cashback.selectors import member_card
from core import money
from members.models import Member
from members.services import MemberRef
from programme.models import MemberTier

EXPIRIES_SHOWN = 10
ENTRIES_SHOWN = 20


@dataclass(frozen=True)
class WalletSummary:
    wallet: Wallet
    card: Card
    balance: Decimal  # spendable now
    pending_balance: Decimal
    tier: MemberTier | None  # None: no tier reached on the card (or the card has none)


@dataclass(frozen=True)
class Expiry:
    card: Card
    amount: Decimal
    expires_at: datetime


@dataclass(frozen=True)
class EntryRow:
    """An entry with its amounts in its currency's minor unit."""

    entry: LedgerEntry
    amount: Decimal
    pending_amount: Decimal
    balance_after: Decimal


@dataclass(frozen=True)
class MemberSummary:
    wallets: list[WalletSummary]
    expiries: list[Expiry]
    entries: list[EntryRow]


def member_summary(*, member: Member) -> MemberSummary:
    """Balances as of now, as the API answers them (`member_card`: what is past its expiry is
    gone, held cashback that is due is spendable, whether or not the worker came by)."""
    wallets = list(
        Wallet.objects.filter(app_id=member.app_id, member=member)
        .select_related("card")
        .order_by("card__name", "id")
    )
    tiers = {
        member_tier.card_id: member_tier
        for member_tier in MemberTier.objects.filter(
            app_id=member.app_id, member=member, tier__isnull=False
        ).select_related("tier")
    }
    summaries, expiries = [], []
    for wallet in wallets:
        now_held = member_card(
            app=member.app, card_id=wallet.card_id, member_ref=MemberRef(member_id=member.pk)
        )
        currency = wallet.card.currency
        summaries.append(
            WalletSummary(
                wallet=wallet,
                card=wallet.card,
                balance=money.quantize(now_held.balance, currency),
                pending_balance=money.quantize(now_held.pending_balance, currency),
                tier=tiers.get(wallet.card_id),
            )
        )
        # What balance answers as `upcoming_expiries`, the wallet's inactivity included.
        expiries += [
            Expiry(card=wallet.card, amount=money.quantize(amount, currency), expires_at=at)
            for amount, at in now_held.upcoming_expiries
        ]
    expiries = sorted(expiries, key=lambda expiry: expiry.expires_at)[:EXPIRIES_SHOWN]
    wallet_ids = [wallet.pk for wallet in wallets]
    entries = [
        EntryRow(
            entry=entry,
            amount=money.quantize(entry.amount, entry.card.currency),
            pending_amount=money.quantize(entry.pending_amount, entry.card.currency),
            balance_after=money.quantize(entry.balance_after, entry.card.currency),
        )
        for entry in LedgerEntry.objects.filter(app_id=member.app_id, wallet_id__in=wallet_ids)
        .select_related("card", "created_by")
        .order_by("-created_at", "-id")[:ENTRIES_SHOWN]
    ]
    return MemberSummary(wallets=summaries, expiries=expiries, entries=entries)
