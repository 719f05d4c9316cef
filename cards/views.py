from drf_spectacular.utils import extend_schema
from rest_framework import viewsets

from apps_auth.permissions import HasCardRead
from cards.schema import CARD_LIST, CARD_RETRIEVE
from cards.selectors import card_get, card_list
from cards.serializers import CardListSerializer, CardSerializer
from core.api.fields import MAX_ID
from core.api.responses import ok
from core.api.serializers import NoQuerySerializer, validated
from core.errors import NotFound


@extend_schema(tags=["Cards"])
class CardViewSet(viewsets.ViewSet):
    permission_classes = [HasCardRead]
    lookup_value_regex = r"[0-9]+"

    @CARD_LIST
    def list(self, request):
        validated(NoQuerySerializer, request.query_params)
        cards = list(card_list(app=request.auth))
        data = CardListSerializer({"cards": cards, "total": len(cards)}).data
        return ok(data)

    @CARD_RETRIEVE
    def retrieve(self, request, pk: str):
        validated(NoQuerySerializer, request.query_params)
        card_id = int(pk)
        if card_id > MAX_ID:
            raise NotFound("Card not found.")
        card = card_get(app=request.auth, card_id=card_id)
        return ok(CardSerializer(card).data)
