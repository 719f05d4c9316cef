"""The reference views: each runs the same rows' SQL as the service's endpoint, and nothing
else (no authentication, validation, idempotency, throttling or logging)."""

from decimal import ROUND_HALF_UP, Decimal

from django.db import connection, transaction
from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView


class Earn(APIView):
    """Read the card, lock and update the wallet, insert a ledger entry."""

    def post(self, request):
        card_id = int(request.data["card_id"])
        member_id = int(request.data["member_id"])
        amount = Decimal(str(request.data["purchase_amount"]))
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT app_id, cashback_percentage FROM cards_card WHERE id = %s", [card_id]
            )
            app_id, percentage = cursor.fetchone()
            cashback = (amount * percentage / 100).quantize(Decimal("0.001"), ROUND_HALF_UP)
            cursor.execute(
                "SELECT id, balance, entries_count FROM cashback_wallet "
                "WHERE card_id = %s AND member_id = %s FOR UPDATE",
                [card_id, member_id],
            )
            wallet_id, balance, entries = cursor.fetchone()
            new_balance = balance + cashback
            # Numbered in the wallet and among its earnings, as the service numbers entries.
            cursor.execute(
                "INSERT INTO cashback_ledgerentry (app_id, wallet_id, card_id, entry_type, event, "
                "amount, balance_after, purchase_amount, cashback_percentage, unrecovered_amount, "
                "metadata, request_fingerprint, created_at, sequence, type_sequence) "
                "VALUES (%s, %s, %s, 'earning', 'cashback_earned', %s, %s, %s, %s, 0, '{}', '', "
                "now(), %s, (SELECT COALESCE(MAX(type_sequence), 0) + 1 FROM "
                "cashback_ledgerentry WHERE wallet_id = %s AND entry_type = 'earning')) "
                "RETURNING id",
                [
                    app_id, wallet_id, card_id, cashback, new_balance, amount, percentage,
                    entries + 1, wallet_id,
                ],
            )  # fmt: skip
            entry_id = cursor.fetchone()[0]
            cursor.execute(
                "UPDATE cashback_wallet SET balance = %s, entries_count = entries_count + 1, "
                "updated_at = now() WHERE id = %s",
                [new_balance, wallet_id],
            )
        return Response({"transaction_id": entry_id, "new_balance": new_balance})


class Balance(APIView):
    """Read the card, the member and the wallet."""

    def get(self, request):
        card_id, member_id = int(request.GET["card_id"]), int(request.GET["member_id"])
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, cashback_percentage FROM cards_card WHERE id = %s", [card_id]
            )
            cursor.fetchone()
            cursor.execute("SELECT id FROM members_member WHERE id = %s", [member_id])
            cursor.fetchone()
            cursor.execute(
                "SELECT balance FROM cashback_wallet WHERE card_id = %s AND member_id = %s",
                [card_id, member_id],
            )
            balance = cursor.fetchone()[0]
        return Response({"card_id": card_id, "member_id": member_id, "cashback_balance": balance})


class History(APIView):
    """Read the card, the member, the count and one page of entries, newest first."""

    def get(self, request):
        card_id, member_id = int(request.GET["card_id"]), int(request.GET["member_id"])
        limit, offset = int(request.GET.get("limit", 20)), int(request.GET.get("offset", 0))
        wallet = "SELECT id FROM cashback_wallet WHERE card_id = %s AND member_id = %s"
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM cards_card WHERE id = %s", [card_id])
            cursor.fetchone()
            cursor.execute("SELECT id FROM members_member WHERE id = %s", [member_id])
            cursor.fetchone()
            cursor.execute(
                f"SELECT count(*) FROM cashback_ledgerentry WHERE wallet_id IN ({wallet})",
                [card_id, member_id],
            )
            total = cursor.fetchone()[0]
            cursor.execute(
                "SELECT id, entry_type, amount, balance_after, reference, created_at "
                f"FROM cashback_ledgerentry WHERE wallet_id IN ({wallet}) "
                "ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s",
                [card_id, member_id, limit, offset],
            )
            rows = [
                {"id": r[0], "type": r[1], "amount": r[2], "balance_after": r[3],
                 "reference": r[4], "created_at": r[5]}
                for r in cursor.fetchall()
            ]  # fmt: skip
        return Response({"transactions": rows, "total": total})


urlpatterns = [
    path("earn", Earn.as_view()),
    path("balance", Balance.as_view()),
    path("history", History.as_view()),
]
