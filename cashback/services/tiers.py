"""Members' tiers as the ledger moves them: the worker's review after a tier's retention, and
staff setting one by hand; each under the member's wallet lock, like an earn's upgrade, and
each change touches the wallet's row: an earn that read the member's tier with its lock
before the change committed sees that its wallet moved, and reads it again
(`cashback.models.LOCK_FOR_PROGRAMME`)."""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from cards.models import Card
from cashback.models import Wallet
from cashback.selectors import qualifying_spend
from cashback.services.ledger import app_ids, locked_wallets
from core.rows import fields_save
from programme.models import MemberTier, Tier
from programme.services import card_programme, member_tier_review, member_tier_set_by_staff

BATCH = 500


@dataclass(frozen=True)
class TiersReviewed:
    changed: int  # members moved down (or up) to what their spend supports


def cashback_tiers_review(
    *, as_of: datetime | None = None, app_id: int | None = None
) -> TiersReviewed:
    """Moves each member whose tier's retention has ended at `as_of` (default now) to the tier
    their qualifying spend then supports, app by app (or `app_id` alone), one member per
    transaction; a tier still supported is kept another retention period. Runs safely beside
    itself and beside earns: each member is reviewed again under its wallet's lock."""
    as_of = as_of or timezone.now()
    changed = 0
    for app in [app_id] if app_id is not None else app_ids():
        last = 0
        while rows := list(
            MemberTier.objects.filter(
                app_id=app, tier__isnull=False, retained_until__lte=as_of, pk__gt=last
            )
            .order_by("pk")
            .values_list("pk", "card_id", "member_id")[:BATCH]
        ):
            for _, card_id, member_id in rows:
                changed += _review_one(
                    app_id=app, card_id=card_id, member_id=member_id, as_of=as_of
                )
            last = rows[-1][0]
    return TiersReviewed(changed=changed)


@transaction.atomic(durable=True)
def _review_one(*, app_id: int, card_id: int, member_id: int, as_of: datetime) -> int:
    card = Card.objects.get(app_id=app_id, pk=card_id)
    wallet = locked_wallets().filter(app_id=app_id, card_id=card_id, member_id=member_id).first()
    spend = qualifying_spend(wallet_id=None if wallet is None else wallet.pk, card=card, at=as_of)
    row = member_tier_review(
        card=card,
        programme=card_programme(card),
        member_id=member_id,
        spend=spend,
        at=as_of,
        upgrade_only=False,
    )
    if row is None:
        return 0
    _touch(wallet)
    return 1


@transaction.atomic(durable=True)
def member_tier_staff_set(
    *, card: Card, member_id: int, tier: Tier | None, note: str
) -> MemberTier:
    """Staff put the member in `tier` (None: none) with a reason, kept the card's
    `tier_retention_days`; recorded as a `member.tier_changed` event with reason `staff`.
    Raises `ValueError` without a reason or for another card's tier."""
    if tier is not None and (tier.card_id != card.pk or tier.app_id != card.app_id):
        raise ValueError("The tier is not one of the card's.")
    wallet = (
        locked_wallets().filter(app_id=card.app_id, card_id=card.pk, member_id=member_id).first()
    )
    row = member_tier_set_by_staff(
        card=card, member_id=member_id, tier=tier, note=note, at=timezone.now()
    )
    _touch(wallet)
    return row


def _touch(wallet: Wallet | None) -> None:
    """A new version of the wallet's row, which the caller holds locked."""
    if wallet is not None:
        wallet.updated_at = timezone.now()
        fields_save(wallet, "updated_at")
