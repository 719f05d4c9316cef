"""The reference: for each path the benchmark drives, a bare Django + DRF view that runs the
service's own statements (imported from the `queries` modules where the service keeps them, so
that the two cannot drift apart), in the same round trips and transactions, prepared the same way
(`core.rows.prepared_cursor`) on the same connection engine and settings (`core.postgresql`), its
cards kept as the service keeps them (`core.generations.GenerationCache`: one read of the
configuration generation in Redis a request), its answers rendered by the service's JSON renderer.
And nothing else: no authentication of the app, no validation beyond reading the body, no
throttling, no access log, no error envelope. What a request must do, it does: an earn computes
its cashback by the card's currency, finds or creates the member, writes the entry with its lot
and its webhook event; an earn with an `Idempotency-Key` records the key and the answer; a redeem
verifies the member's token (PyJWT, as the service) and spends the oldest lots.

The benchmark's requests are all ones that succeed: a request this reference cannot serve
(a card of another app, a member unknown by id, a balance that does not cover) fails loudly."""

import hashlib
import json
import os
import secrets
from datetime import datetime, timedelta
from decimal import Decimal

import jwt
import simplejson
from django.db import transaction
from django.urls import path
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.views import APIView

from apps_auth.queries import IDEMPOTENCY_CLAIM, IDEMPOTENCY_COMPLETE
from cards.queries import CARD_OF_APP
from cashback.queries import (
    ENTRY_APPEND,
    ENTRY_APPEND_SPENDING,
    HISTORY_RANGE,
    MEMBER_CARD,
    MEMBER_WALLET_INSERT,
    WALLET_MOVE,
)
from core import money
from core.api.fields import timestamp
from core.generations import GenerationCache, configuration_generation
from core.rows import prepared_cursor

USING = "default"
# The columns of `CARD_OF_APP` the views read.
CARD_APP, CARD_PERCENTAGE, CARD_CURRENCY = 1, 6, 18
# The fields of an entry an earn or a redeem leaves as their defaults.
ENTRY_DEFAULTS = {
    "pending_amount": Decimal(0),
    "pending_balance_after": Decimal(0),
    "purchase_amount": None,
    "refund_amount": None,
    "cashback_percentage": None,
    "unrecovered_amount": Decimal(0),
    "original_entry_id": None,
    "reference": None,
    "metadata": "{}",
    "breakdown": None,
    "lines": None,
    "member_created": False,
    "request_fingerprint": "",
    "created_by_id": None,
    "approved_by_id": None,
    "idempotency_record_id": None,
}
ISSUER = "cashback-api"
LEASE = timedelta(seconds=int(os.environ.get("IDEMPOTENCY_LEASE_SECONDS", "30")))
CLAIMS = ["iss", "aud", "sub", "iat", "exp", "jti"]

# As the service's (`cards.selectors`): as many cards, for as long.
_cards: GenerationCache[tuple[int, int], tuple] = GenerationCache(
    10_000, ttl=float(os.environ.get("API_KEY_CACHE_SECONDS", "5"))
)


def card_of(card_id: int, app_id: int) -> tuple:
    """The card's row, kept while the configuration generation stays the one it was read
    under, as the service keeps its cards."""

    def load() -> tuple:
        with prepared_cursor(USING) as cursor:
            cursor.execute(CARD_OF_APP, {"card": card_id, "app": app_id})
            row = cursor.fetchone()
        if row is None:
            raise LookupError(f"card {card_id} of app {app_id}")
        return row

    return _cards.get((card_id, app_id), load)


def _event(event_type: str, app_id: int, created_at: datetime, data: dict) -> dict:
    """The parameters of the event's part of `ENTRY_APPEND`, its body rendered once."""
    public_id = f"evt_{secrets.token_hex(12)}"
    head = json.dumps({"id": public_id, "type": event_type, "created_at": timestamp(created_at)})
    return {
        "event_public_id": public_id,
        "event_app": app_id,
        "event_type": event_type,
        "event_head": head.removesuffix("}") + ',"app_id":',
        "event_tail": ',"data":' + simplejson.dumps(data, use_decimal=True) + "}",
        "event_created_at": created_at,
        "event_types": json.dumps([event_type]),
    }


def _append(cursor, sql: str, entry: dict, event_type: str, data: dict, **more) -> tuple:
    params = {**ENTRY_DEFAULTS, **entry, **more}
    params.update(_event(event_type, entry["app_id"], entry["created_at"], data))
    cursor.execute(sql, params)
    return cursor.fetchone()


class Earn(APIView):
    """Move the wallet of the member named by id, email or phone (`WALLET_MOVE`; a new member
    and its wallet when the email names none: `MEMBER_WALLET_INSERT`), then save the entry with
    its lot and its event (`ENTRY_APPEND`); with an `Idempotency-Key`, record the key first and
    the answer last."""

    def post(self, request):
        data = request.data
        app_id = int(request.headers["X-Bench-App"])
        card = card_of(int(data["card_id"]), app_id)
        currency = card[CARD_CURRENCY]
        amount = Decimal(str(data["purchase_amount"]))
        lines = data.get("lines")
        cashback = money.percentage_of(amount, card[CARD_PERCENTAGE], currency)
        key = request.headers.get("Idempotency-Key")
        member_id = data.get("member_id")
        keys = {
            "member_id": member_id,
            "email": None if member_id else (data.get("email") or "").lower() or None,
            "phone": None if member_id or data.get("email") else data.get("phone"),
        }
        now = timezone.now()
        record = None
        if key:  # claimed in a statement of its own, as the service claims it
            with prepared_cursor(USING) as cursor:
                cursor.execute(
                    IDEMPOTENCY_CLAIM,
                    {
                        "app_id": app_id,
                        "key": key,
                        "request_fingerprint": hashlib.sha256(request.body).hexdigest(),
                        "state": "in_progress",
                        "lease_until": now + LEASE,
                        "response_status": None,
                        "response_body": "",
                        "created_at": now,
                    },
                )
                (record,) = cursor.fetchone()
        with transaction.atomic(using=USING, durable=True), prepared_cursor(USING) as cursor:
            cursor.execute(
                WALLET_MOVE,
                {
                    "amount": cashback,
                    "pending": Decimal(0),
                    "now": now,
                    "app": app_id,
                    "card": card[0],
                    **keys,
                    "covered": False,
                    "unlocked": False,
                    "settled": True,
                    "earning": True,
                    "inactive_at": None,
                },
            )
            moved = cursor.fetchone()
            created = moved is None
            if created:
                cursor.execute(
                    MEMBER_WALLET_INSERT,
                    {
                        "member_app_id": app_id,
                        "member_name": "",
                        "member_email": keys["email"],
                        "member_phone": keys["phone"],
                        "member_pin_hash": "",
                        "member_pin_failed_attempts": 0,
                        "member_pin_locked_until": None,
                        "member_created_at": now,
                        "app_id": app_id,
                        "card_id": card[0],
                        "balance": cashback,
                        "pending_balance": Decimal(0),
                        "entries_count": 1,
                        "inactive_at": None,
                        "created_at": now,
                        "updated_at": now,
                    },
                )
                member_id, wallet_id, entry_id = cursor.fetchone()
                balance, last_at = cashback, None
            else:
                wallet_id, member_id, balance = moved[0], moved[2], moved[4]
                entry_id, last_at = moved[-2], moved[-1]
            created_at = now if last_at is None else max(now, last_at)
            breakdown = [{"kind": "base", "percentage": str(card[CARD_PERCENTAGE]),
                          "amount": str(cashback)}]  # fmt: skip
            answer = {
                "transaction_id": entry_id,
                "purchase_amount": money.quantize(amount, currency),
                "cashback_percentage": money.plain(card[CARD_PERCENTAGE]),
                "cashback_earned": cashback,
                "new_balance": money.quantize(balance, currency),
                "currency": currency,
                "member_id": member_id,
                "card_id": card[0],
                "reference": data.get("reference"),
                "earned_at": timestamp(created_at),
                "status": "available",
                "available_at": timestamp(created_at),
                "pending_balance": Decimal(0),
                "member_created": created,
                "breakdown": breakdown,
            }
            _append(
                cursor,
                ENTRY_APPEND,
                {
                    "id": entry_id,
                    "app_id": app_id,
                    "wallet_id": wallet_id,
                    "card_id": card[0],
                    "entry_type": "earning",
                    "event": "cashback_earned",
                    "amount": cashback,
                    "balance_after": balance,
                    "purchase_amount": amount,
                    "cashback_percentage": card[CARD_PERCENTAGE],
                    "reference": data.get("reference"),
                    "breakdown": json.dumps(breakdown),
                    "lines": None if lines is None else json.dumps(lines, default=str),
                    "member_created": created,
                    "idempotency_record_id": record,
                    "created_at": created_at,
                },
                "cashback.earned",
                answer,
                lot_available_at=created_at,
                lot_expires_at=None,
            )
        body = {"success": True, "data": answer}
        if record is not None:
            with prepared_cursor(USING) as cursor:
                cursor.execute(
                    IDEMPOTENCY_COMPLETE,
                    {
                        "app": app_id,
                        "id": record,
                        "status": 200,
                        "body": simplejson.dumps(body, use_decimal=True),
                    },
                )
        return Response(body)


class Redeem(APIView):
    """Verify the member's token; take the amount from the wallet when its balance covers it and
    the member's PIN is not locked (`WALLET_MOVE`); save the entry with its event, spending the
    oldest lots (`ENTRY_APPEND`)."""

    def post(self, request):
        data = request.data
        app_id = int(request.headers["X-Bench-App"])
        claims = jwt.decode(
            request.headers["X-Member-Token"],
            os.environ.get("MEMBER_TOKEN_SIGNING_KEY") or os.environ["SECRET_KEY"],
            algorithms=["HS256"],
            audience=request.headers["X-App-Id"],
            issuer=ISSUER,
            options={"require": CLAIMS},
        )
        member_id = int(claims["sub"])
        card = card_of(int(data["card_id"]), app_id)
        currency = card[CARD_CURRENCY]
        amount = money.quantize(Decimal(str(data["amount"])), currency)
        now = timezone.now()
        with transaction.atomic(using=USING, durable=True), prepared_cursor(USING) as cursor:
            cursor.execute(
                WALLET_MOVE,
                {
                    "amount": -amount,
                    "pending": Decimal(0),
                    "now": now,
                    "app": app_id,
                    "card": card[0],
                    "member_id": member_id,
                    "email": None,
                    "phone": None,
                    "covered": True,
                    "unlocked": True,
                    "settled": True,
                    "earning": False,
                    "inactive_at": None,
                },
            )
            moved = cursor.fetchone()
            if moved is None:
                raise LookupError(f"no balance of member {member_id} covers {amount}")
            wallet_id, balance, entry_id, last_at = moved[0], moved[4], moved[-2], moved[-1]
            created_at = now if last_at is None else max(now, last_at)
            answer = {
                "transaction_id": entry_id,
                "amount_redeemed": amount,
                "previous_balance": money.quantize(balance + amount, currency),
                "new_balance": money.quantize(balance, currency),
                "currency": currency,
                "member_id": member_id,
                "card_id": card[0],
                "reference": data.get("reference"),
                "redeemed_at": timestamp(created_at),
            }
            _append(
                cursor,
                ENTRY_APPEND_SPENDING,
                {
                    "id": entry_id,
                    "app_id": app_id,
                    "wallet_id": wallet_id,
                    "card_id": card[0],
                    "entry_type": "redemption",
                    "event": "cashback_redeemed",
                    "amount": -amount,
                    "balance_after": balance,
                    "reference": data.get("reference"),
                    "created_at": created_at,
                },
                "cashback.redeemed",
                answer,
                spend_amount=amount,
                spend_first=None,
            )
        return Response({"success": True, "data": answer})


def _member_card(request) -> tuple:
    # The service reads the configuration generation once a request, for its cache of keys:
    # so does the reference, which has no key to check.
    configuration_generation()
    app_id = int(request.headers["X-Bench-App"])
    card_id, member_id = int(request.GET["card_id"]), int(request.GET["member_id"])
    with prepared_cursor(USING) as cursor:
        cursor.execute(
            MEMBER_CARD,
            {"card": card_id, "member": member_id, "app": app_id, "now": timezone.now()},
        )
        row = cursor.fetchone()
    if row is None or not row[26]:
        raise LookupError(f"card {card_id}, member {member_id}")
    return app_id, card_id, member_id, row


class Balance(APIView):
    """The card, the member's wallet and its expiries (`MEMBER_CARD`)."""

    def get(self, request):
        _, card_id, member_id, row = _member_card(request)
        currency, ats, amounts = row[CARD_CURRENCY], row[30] or [], row[31] or []
        upcoming = [
            {"amount": amount, "expires_at": timestamp(at)}
            for at, amount in sorted(zip(ats, amounts, strict=True))
        ]
        return Response(
            {
                "success": True,
                "data": {
                    "card_id": card_id,
                    "member_id": member_id,
                    "cashback_balance": row[22] or Decimal(0),
                    "pending_balance": row[23] or Decimal(0),
                    "next_expiry": upcoming[0] if upcoming else None,
                    "upcoming_expiries": upcoming,
                    "cashback_percentage": money.plain(row[CARD_PERCENTAGE]),
                    "currency": currency,
                    "tier": None,
                    "queried_at": timestamp(timezone.now()),
                },
            }
        )


class History(APIView):
    """The card and the member's wallet (`MEMBER_CARD`), then one page of its entries, newest
    first, by their numbers (`HISTORY_RANGE`), each rendered as the contract's history item."""

    def get(self, request):
        app_id, card_id, member_id, row = _member_card(request)
        limit, offset = int(request.GET.get("limit", 20)), int(request.GET.get("offset", 0))
        wallet_id, total = row[21], row[24] or 0
        high = total - offset
        low = max(1, high - limit + 1)
        with prepared_cursor(USING) as cursor:
            cursor.execute(
                HISTORY_RANGE,
                {"app": app_id, "wallet": wallet_id, "low": low, "high": high},
            )
            entries = cursor.fetchall()
        items = [
            {"id": e[0], "type": e[4], "amount": e[6], "pending_amount": e[8],
             "pending_balance_after": e[9], "original_transaction_id": e[14], "points": 0,
             "event": e[5], "balance_after": e[7], "purchase_amount": e[10],
             "refund_amount": e[11], "reference": e[15], "metadata": e[16],
             "breakdown": e[17], "created_at": timestamp(e[26])}
            for e in entries
        ]  # fmt: skip
        return Response(
            {
                "success": True,
                "data": {
                    "card_id": card_id,
                    "member_id": member_id,
                    "transactions": items,
                    "pagination": {
                        "limit": limit,
                        "offset": offset,
                        "total": total,
                        "has_more": offset + len(items) < total,
                    },
                },
            }
        )


class Health(APIView):
    """Up once the process serves requests: what the benchmark waits for."""

    def get(self, request):
        return Response({"success": True, "data": {}})


urlpatterns = [
    path("healthz", Health.as_view()),
    path("earn", Earn.as_view()),
    path("redeem", Redeem.as_view()),
    path("balance", Balance.as_view()),
    path("history", History.as_view()),
]
