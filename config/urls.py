from django.contrib import admin
from django.urls import include, path
from rest_framework.routers import SimpleRouter

from cards.views import CardViewSet
from cashback.views import CashbackViewSet
from config.health import healthz, readyz
from core.api.openapi import ApiDocsView, OpenApiDocumentView
from members.views import MemberViewSet, OtpViewSet
from programme.views import CardRuleViewSet, CardTierViewSet, RuleViewSet
from webhooks.views import WebhookViewSet

router = SimpleRouter(trailing_slash=False)
router.register("cashback", CashbackViewSet, basename="cashback")
router.register("cards", CardViewSet, basename="cards")
router.register("auth", OtpViewSet, basename="auth")
router.register("members", MemberViewSet, basename="members")
router.register("webhooks", WebhookViewSet, basename="webhooks")
router.register(r"cards/(?P<card_id>[0-9]+)/rules", CardRuleViewSet, basename="card-rules")
router.register(r"cards/(?P<card_id>[0-9]+)/tiers", CardTierViewSet, basename="card-tiers")
router.register("rules", RuleViewSet, basename="rules")

# Without credentials, throttled per client address; health checks are neither.
api_docs = [
    path("schema", OpenApiDocumentView.as_view(), name="schema"),
    path("docs", ApiDocsView.as_view(url_name="schema"), name="docs"),
]

urlpatterns = [
    path("api/v1/cashback/", include(api_docs)),
    path("api/v1/cashback/", include(router.urls)),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("admin/", admin.site.urls),
]
