"""The reference views: each runs the essential SQL of the service's endpoint, written plainly
(one statement per row it reads or writes, as a developer without the service's statements
would write them), and nothing else: no authentication, validation, idempotency, throttling or
logging. What the service must write, the reference writes too: the ledger entry, the wallet's
new balance, the earning's lot (a redemption's spends), the webhook event row, a new member."""

import json
import secrets
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection, transaction
from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

CARD = "SELECT id, app_id, cashback_percentage FROM cards_card WHERE id = %s"
MOVE = (
    "UPDATE cashback_wallet SET balance = balance + %s, entries_count = entries_count + 1, "
    "updated_at = now() WHERE app_id = %s AND card_id = %s AND member_id = %s "
    "RETURNING id, balance, pending_balance, entries_count"
)
# Numbered in the wallet and among its entries of the type, as the service numbers entries.
ENTRY = (
    "INSERT INTO cashback_ledgerentry (app_id, wallet_id, card_id, entry_type, event, amount, "
    "balance_after, pending_amount, pending_balance_after, purchase_amount, cashback_percentage, "
    "unrecovered_amount, metadata, request_fingerprint, created_at, sequence, type_sequence) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, 0, %s, %s, %s, 0, '{}', '', now(), %s, "
    "(SELECT COALESCE(MAX(type_sequence), 0) + 1 FROM cashback_ledgerentry "
    "WHERE app_id = %s AND wallet_id = %s AND entry_type = %s)) RETURNING id, created_at"
)
LOT = (
    "INSERT INTO cashback_lot (app_id, wallet_id, source_id, pending, remaining, available_at, "
    "created_at) VALUES (%s, %s, %s, 0, %s, %s, %s)"
)
EVENT = (
    "INSERT INTO webhooks_webhookevent (public_id, app_id, event_type, body, created_at) "
    "VALUES (%s, %s, %s, %s, now())"
)
MEMBER_BY_EMAIL = "SELECT id FROM members_member WHERE app_id = %s AND email = %s"
MEMBER_BY_PHONE = "SELECT id FROM members_member WHERE app_id = %s AND phone = %s"


def _event(cursor, app_id: int, event_type: str, data: dict) -> None:
    public_id = f"evt_{secrets.token_hex(12)}"
    body = json.dumps({"id": public_id, "type": event_type, "data": data}, default=str)
    cursor.execute(EVENT, [public_id, app_id, event_type, body])


def _timestamp(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Earn(APIView):
    """Read the card; find the member (by id, email or phone; created when unknown); move the
    wallet (created with the member's first entry); insert the entry, its lot, its event."""

    def post(self, request):
        data = request.data
        card_id = int(data["card_id"])
        amount = Decimal(str(data["purchase_amount"]))
        with connection.cursor() as cursor:
            cursor.execute(CARD, [card_id])
            _, app_id, percentage = cursor.fetchone()
            cashback = (amount * percentage / 100).quantize(Decimal("0.001"), ROUND_HALF_UP)
            with transaction.atomic():
                member_id = data.get("member_id")
                created = False
                if member_id is None:
                    email, phone = data.get("email"), data.get("phone")
                    cursor.execute(
                        MEMBER_BY_EMAIL if email else MEMBER_BY_PHONE, [app_id, email or phone]
                    )
                    row = cursor.fetchone()
                    if row is None:
                        cursor.execute(
                            "INSERT INTO members_member (app_id, name, email, phone, pin_hash, "
                            "pin_failed_attempts, created_at) VALUES (%s, '', %s, %s, '', 0, "
                            "now()) RETURNING id",
                            [app_id, email, phone],
                        )
                        row = cursor.fetchone()
                        created = True
                    member_id = row[0]
                if created:
                    cursor.execute(
                        "INSERT INTO cashback_wallet (app_id, member_id, card_id, balance, "
                        "pending_balance, entries_count, created_at, updated_at) "
                        "VALUES (%s, %s, %s, %s, 0, 1, now(), now()) "
                        "RETURNING id, balance, pending_balance, entries_count",
                        [app_id, member_id, card_id, cashback],
                    )
                else:
                    cursor.execute(MOVE, [cashback, app_id, card_id, member_id])
                wallet_id, balance, pending, entries = cursor.fetchone()
                cursor.execute(
                    ENTRY,
                    [
                        app_id, wallet_id, card_id, "earning", "cashback_earned", cashback,
                        balance, pending, amount, percentage, entries, app_id, wallet_id, "earning",
                    ],
                )  # fmt: skip
                entry_id, created_at = cursor.fetchone()
                cursor.execute(LOT, [app_id, wallet_id, entry_id, cashback, created_at, created_at])
                result = {
                    "transaction_id": entry_id,
                    "purchase_amount": amount,
                    "cashback_earned": cashback,
                    "new_balance": balance,
                    "member_id": member_id,
                    "card_id": card_id,
                    "earned_at": _timestamp(created_at),
                }
                _event(cursor, app_id, "cashback.earned", result)
        return Response({"success": True, "data": {**result, "member_created": created}})


class Redeem(APIView):
    """Read the card and the member; take from the wallet when it holds enough; insert the
    entry; spend the oldest lot; insert the movement and the event."""

    def post(self, request):
        data = request.data
        card_id, member_id = int(data["card_id"]), int(data["member_id"])
        amount = Decimal(str(data["amount"]))
        with connection.cursor() as cursor:
            cursor.execute(CARD, [card_id])
            _, app_id, _ = cursor.fetchone()
            cursor.execute(
                "SELECT id, pin_locked_until FROM members_member WHERE id = %s AND app_id = %s",
                [member_id, app_id],
            )
            cursor.fetchone()
            with transaction.atomic():
                cursor.execute(
                    "UPDATE cashback_wallet SET balance = balance - %s, "
                    "entries_count = entries_count + 1, updated_at = now() "
                    "WHERE app_id = %s AND card_id = %s AND member_id = %s AND balance >= %s "
                    "RETURNING id, balance, pending_balance, entries_count",
                    [amount, app_id, card_id, member_id, amount],
                )
                wallet_id, balance, pending, entries = cursor.fetchone()
                cursor.execute(
                    ENTRY,
                    [
                        app_id, wallet_id, card_id, "redemption", "cashback_redeemed", -amount,
                        balance, pending, None, None, entries, app_id, wallet_id, "redemption",
                    ],
                )  # fmt: skip
                entry_id, created_at = cursor.fetchone()
                cursor.execute(
                    "SELECT id FROM cashback_lot WHERE app_id = %s AND wallet_id = %s "
                    "AND remaining >= %s "
                    "ORDER BY available_at, id LIMIT 1",
                    [app_id, wallet_id, amount],
                )
                (lot_id,) = cursor.fetchone()
                cursor.execute(
                    "UPDATE cashback_lot SET remaining = remaining - %s WHERE id = %s",
                    [amount, lot_id],
                )
                cursor.execute(
                    "INSERT INTO cashback_lotmovement (app_id, entry_id, lot_id, amount, "
                    "pending_amount) VALUES (%s, %s, %s, %s, 0)",
                    [app_id, entry_id, lot_id, -amount],
                )
                result = {
                    "transaction_id": entry_id,
                    "amount_redeemed": amount,
                    "previous_balance": balance + amount,
                    "new_balance": balance,
                    "member_id": member_id,
                    "card_id": card_id,
                    "redeemed_at": _timestamp(created_at),
                }
                _event(cursor, app_id, "cashback.redeemed", result)
        return Response({"success": True, "data": result})


# The card, whether the member is the card's app's, the member's wallet on it, and the app. Every
# statement names the app of each table it reads, as the service's do: the indexes lead with it.
MEMBER_CARD = (
    "SELECT c.id, c.cashback_percentage, c.currency, w.id, w.balance, w.pending_balance, "
    "w.entries_count, EXISTS (SELECT 1 FROM members_member m WHERE m.id = %s "
    "AND m.app_id = c.app_id), c.app_id FROM cards_card c LEFT JOIN cashback_wallet w "
    "ON w.app_id = c.app_id AND w.card_id = c.id AND w.member_id = %s WHERE c.id = %s"
)


class Balance(APIView):
    """Read the card, the member, the wallet and the soonest expiry."""

    def get(self, request):
        card_id, member_id = int(request.GET["card_id"]), int(request.GET["member_id"])
        with connection.cursor() as cursor:
            cursor.execute(
                MEMBER_CARD.replace(
                    " FROM cards_card c",
                    ", (SELECT expires_at FROM cashback_lot WHERE app_id = w.app_id "
                    "AND wallet_id = w.id "
                    "AND remaining > 0 AND expires_at IS NOT NULL ORDER BY expires_at LIMIT 1) "
                    "FROM cards_card c",
                ),
                [member_id, member_id, card_id],
            )
            row = cursor.fetchone()
        return Response(
            {
                "success": True,
                "data": {
                    "card_id": card_id,
                    "member_id": member_id,
                    "cashback_balance": row[4],
                    "pending_balance": row[5],
                    "next_expiry": row[9],
                    "cashback_percentage": row[1],
                    "currency": row[2],
                    "queried_at": _timestamp(datetime.now(UTC)),
                },
            }
        )


class History(APIView):
    """Read the card, the member and the wallet, then one page of entries, newest first, each
    with the fields the service's item carries (the contract's history item)."""

    def get(self, request):
        card_id, member_id = int(request.GET["card_id"]), int(request.GET["member_id"])
        limit, offset = int(request.GET.get("limit", 20)), int(request.GET.get("offset", 0))
        with connection.cursor() as cursor:
            cursor.execute(MEMBER_CARD, [member_id, member_id, card_id])
            row = cursor.fetchone()
            wallet_id, total, app_id = row[3], row[6], row[8]
            cursor.execute(
                "SELECT id, entry_type, amount, pending_amount, pending_balance_after, "
                "original_entry_id, event, balance_after, purchase_amount, refund_amount, "
                "reference, metadata, created_at "
                "FROM cashback_ledgerentry WHERE app_id = %s AND wallet_id = %s "
                "ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s",
                [app_id, wallet_id, limit, offset],
            )
            rows = [
                {"id": r[0], "type": r[1], "amount": r[2], "pending_amount": r[3],
                 "pending_balance_after": r[4], "original_transaction_id": r[5], "points": 0,
                 "event": r[6], "balance_after": r[7], "purchase_amount": r[8],
                 "refund_amount": r[9], "reference": r[10], "metadata": r[11],
                 "created_at": _timestamp(r[12])}
                for r in cursor.fetchall()
            ]  # fmt: skip
        return Response(
            {
                "success": True,
                "data": {
                    "card_id": card_id,
                    "member_id": member_id,
                    "transactions": rows,
                    "pagination": {
                        "limit": limit,
                        "offset": offset,
                        "total": total,
                        "has_more": offset + len(rows) < total,
                    },
                },
            }
        )


urlpatterns = [
    path("earn", Earn.as_view()),
    path("redeem", Redeem.as_view()),
    path("balance", Balance.as_view()),
    path("history", History.as_view()),
]
