"""Staff adjustments: credits and debits by hand from the back office, capped, posted once per
form, and past a threshold over a window of hours only once a second staff user approves."""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from uuid import UUID, uuid4

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.db.models.functions import Abs
from django.utils import timezone

from cashback.errors import AdjustmentAlreadyDecided, AdjustmentFormReused, InsufficientBalance
from cashback.models import (
    AdjustmentRequest,
    AdjustmentStatus,
    EntryType,
    LedgerEntry,
    Lot,
    Wallet,
)
from cashback.services.ledger import (
    Operation,
    Posted,
    amount_check_places,
    entry_append,
    wallet_lock,
)
from core import money
from core.errors import InvalidInput, PermissionDenied
from core.fingerprint import digest

REASON_MAX_LENGTH = AdjustmentRequest._meta.get_field("reason").max_length or 500


@dataclass(frozen=True)
class Adjustment:
    """An adjustment request and what became of it; `replayed` when its form had been
    submitted before and this submission changed nothing."""

    request: AdjustmentRequest
    replayed: bool = False

    @property
    def entry(self) -> LedgerEntry | None:
        """The entry it posted; None while it waits for approval, or when rejected."""
        return self.request.entry


def adjustment_limit() -> Decimal:
    """The most one adjustment may move either way: the setting, and never more than any
    operation of the API may move."""
    return min(settings.CASHBACK_ADJUSTMENT_MAX_AMOUNT, money.MAX_AMOUNT)


def adjustment_needs_approval(*, wallet: Wallet, amount: Decimal, requester: User) -> bool:
    """Whether an adjustment must wait for a second staff user: when its amount, added to those
    posted at once (applied, nobody else having looked) within the last
    `CASHBACK_ADJUSTMENT_APPROVAL_WINDOW_HOURS` (a) by the same requester on any wallet or
    (b) on the same wallet by anyone, moves more than `CASHBACK_ADJUSTMENT_APPROVAL_THRESHOLD`
    either way. So ten small adjustments move no more than one large one without a second
    person. Approved requests (a second person saw them), pending and rejected ones do not count.

    The caller holds the wallet's row and then the requester's row locked until it commits, so
    that no other submission on the wallet or by the requester moves either total meanwhile.
    """
    since = timezone.now() - timedelta(hours=settings.CASHBACK_ADJUSTMENT_APPROVAL_WINDOW_HOURS)
    by_requester, on_wallet = Q(requested_by=requester), Q(wallet=wallet)
    # Each total adds the amounts as they are: the threshold is a plain number, and a
    # requester's window may span cards of different currencies, counted alike.
    totals = AdjustmentRequest.objects.filter(
        by_requester | on_wallet, status=AdjustmentStatus.APPLIED, created_at__gte=since
    ).aggregate(
        by_requester=Sum(Abs("amount"), filter=by_requester, default=Decimal(0)),
        on_wallet=Sum(Abs("amount"), filter=on_wallet, default=Decimal(0)),
    )
    threshold = settings.CASHBACK_ADJUSTMENT_APPROVAL_THRESHOLD
    return any(abs(amount) + total > threshold for total in totals.values())


def _requester_lock(user: User) -> None:
    """Locks the staff user's row until the transaction ends, always after the wallet's (the one
    order, so no deadlock): two submissions by one user on two wallets then count each other.
    FOR NO KEY UPDATE, as PostgreSQL's own UPDATE of a row takes: it excludes itself, and not
    the key-share locks of inserts that merely refer to the user (an entry it created)."""
    User.objects.select_for_update(no_key=True).get(pk=user.pk)


def _adjustment_check(*, amount: Decimal, reason: str, currency: str) -> None:
    if not reason:
        raise InvalidInput(details={"reason": ["Give the reason for the adjustment."]})
    if len(reason) > REASON_MAX_LENGTH:
        raise InvalidInput(
            details={"reason": [f"At most {REASON_MAX_LENGTH} characters for the reason."]}
        )
    if amount == 0:
        raise InvalidInput(details={"amount": ["An adjustment moves money: not 0."]})
    limit = adjustment_limit()
    if abs(amount) > limit:
        raise InvalidInput(
            details={
                "amount": [
                    f"An adjustment moves at most {money.quantize(limit, currency)} {currency} "
                    "either way."
                ]
            }
        )
    amount_check_places(field="amount", amount=amount, currency=currency)


def _adjustment_post(
    *, request: AdjustmentRequest, wallet: Wallet, approved_by: User | None
) -> Posted:
    """Posts the request's entry on its wallet, which the caller holds locked."""
    card = request.wallet.card
    if wallet.balance + request.amount < 0:
        raise InsufficientBalance(
            "A debit cannot take the balance below zero.",
            details={
                "balance": money.quantize(wallet.balance, card.currency),
                "amount": request.amount,
            },
        )
    operation = Operation(
        card=card,
        entry_type=EntryType.ADJUSTMENT,
        request_fingerprint=digest(
            {"wallet": wallet.pk, "amount": request.amount, "reason": request.reason}
        ),
    )
    posted = entry_append(
        wallet=wallet,
        operation=operation,
        amount=request.amount,
        created_by=request.requested_by,
        approved_by=approved_by,
        metadata={"reason": request.reason},
    )
    # A credit opens a lot of its own (`entry_post`); a debit spends the oldest lots.
    if request.amount < 0:
        Lot.objects.spend(entry=posted.entry, amount=-request.amount)
    return posted


def _adjustment_replay(
    *, token: UUID, wallet: Wallet, amount: Decimal, reason: str
) -> Adjustment | None:
    request = (
        AdjustmentRequest.objects.select_related("entry", "wallet__card")
        .filter(app_id=wallet.app_id, token=token)
        .first()
    )
    if request is None:
        return None
    if (request.wallet_id, request.amount, request.reason) != (wallet.pk, amount, reason):
        raise AdjustmentFormReused()
    return Adjustment(request=request, replayed=True)


@transaction.atomic(durable=True)
def cashback_adjust(
    *,
    wallet: Wallet,
    amount: Decimal,
    reason: str,
    staff_user: User,
    token: UUID | None = None,
) -> Adjustment:
    """Credits (amount > 0) or debits (amount < 0) a wallet by hand, as an `adjustment` entry
    carrying the staff user and the reason. Same lock, constraint and rounding as the API.

    `token` is the form's one-time token: a second submission of it posts nothing and answers
    the first one's request (`replayed`). An amount that, with those posted at once by the same
    staff user or on the same wallet within `CASHBACK_ADJUSTMENT_APPROVAL_WINDOW_HOURS`, moves
    more than `CASHBACK_ADJUSTMENT_APPROVAL_THRESHOLD` posts nothing: the request waits for
    another staff user (`adjustment_request_approve`; see `adjustment_needs_approval`). The
    wallet's row, then the staff user's, stay locked until the end, so that concurrent
    submissions on one wallet or by one user are counted one after the other.

    Raises `InvalidInput` (zero amount, more than `CASHBACK_ADJUSTMENT_MAX_AMOUNT`, too many
    decimals, no reason), `InsufficientBalance` when a debit would take the balance below zero,
    and `AdjustmentFormReused` when the token was submitted with other values.
    """
    reason = reason.strip()
    _adjustment_check(amount=amount, reason=reason, currency=wallet.card.currency)
    token = token or uuid4()
    # A submission of the same form on the same wallet waits here for the first to commit,
    # then finds its request.
    locked = wallet_lock(app_id=wallet.app_id, wallet_id=wallet.pk)
    replay = _adjustment_replay(token=token, wallet=locked, amount=amount, reason=reason)
    if replay is not None:
        return replay
    _requester_lock(staff_user)
    pending = adjustment_needs_approval(wallet=locked, amount=amount, requester=staff_user)
    if locked.balance + amount < 0:  # refused now rather than at approval
        raise InsufficientBalance(
            "A debit cannot take the balance below zero.",
            details={
                "balance": money.quantize(locked.balance, wallet.card.currency),
                "amount": amount,
            },
        )
    try:
        with transaction.atomic():
            request = AdjustmentRequest.objects.create(
                app_id=wallet.app_id,
                wallet=wallet,
                amount=amount,
                reason=reason,
                token=token,
                requested_by=staff_user,
            )
    except IntegrityError:
        # The same token, submitted meanwhile for another wallet.
        replay = _adjustment_replay(token=token, wallet=locked, amount=amount, reason=reason)
        if replay is None:
            raise
        return replay
    if not pending:
        request.entry = _adjustment_post(request=request, wallet=locked, approved_by=None).entry
        request.status = AdjustmentStatus.APPLIED
        request.decided_at = timezone.now()
        request.save(update_fields=["entry", "status", "decided_at"])
    return Adjustment(request=request)


def _adjustment_request_lock(adjustment_request: AdjustmentRequest) -> AdjustmentRequest:
    """The request, its row locked until the transaction ends; still pending."""
    request = (
        AdjustmentRequest.objects.select_for_update(of=("self",))
        .select_related("wallet__card", "requested_by")
        .get(pk=adjustment_request.pk)
    )
    if request.status != AdjustmentStatus.PENDING:
        raise AdjustmentAlreadyDecided(
            f"This adjustment request was already {request.get_status_display().lower()}."
        )
    return request


def _staff_check(user: User) -> None:
    if not user.has_perm("cashback.adjust_wallet"):
        raise PermissionDenied("Only staff who may adjust wallets decide adjustment requests.")


@transaction.atomic(durable=True)
def adjustment_request_approve(
    *, adjustment_request: AdjustmentRequest, approver: User
) -> Adjustment:
    """Posts a pending adjustment, its entry carrying the requester (`created_by`) and the
    approver (`approved_by`).

    The request's row is locked first, so of two approvers one posts and the other finds it
    decided; the wallet is locked and its balance checked again, as it may have moved since the
    request. Raises `PermissionDenied` (the approver is the requester, or may not adjust),
    `AdjustmentAlreadyDecided`, `InvalidInput` (now over the limit) and `InsufficientBalance`;
    then nothing changes and the request stays pending.
    """
    request = _adjustment_request_lock(adjustment_request)
    if approver.pk == request.requested_by_id:
        raise PermissionDenied("Another staff user must approve your adjustment.")
    _staff_check(approver)
    _adjustment_check(
        amount=request.amount, reason=request.reason, currency=request.wallet.card.currency
    )
    locked = wallet_lock(app_id=request.app_id, wallet_id=request.wallet_id)
    request.entry = _adjustment_post(request=request, wallet=locked, approved_by=approver).entry
    request.status = AdjustmentStatus.APPROVED
    request.decided_by = approver
    request.decided_at = timezone.now()
    request.save(update_fields=["entry", "status", "decided_by", "decided_at"])
    return Adjustment(request=request)


@transaction.atomic(durable=True)
def adjustment_request_reject(
    *, adjustment_request: AdjustmentRequest, staff_user: User
) -> AdjustmentRequest:
    """Closes a pending adjustment without posting anything; the requester may withdraw their
    own. Raises `PermissionDenied` and `AdjustmentAlreadyDecided`."""
    request = _adjustment_request_lock(adjustment_request)
    _staff_check(staff_user)
    request.status = AdjustmentStatus.REJECTED
    request.decided_by = staff_user
    request.decided_at = timezone.now()
    request.save(update_fields=["status", "decided_by", "decided_at"])
    return request
