from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from cards.views import CardViewSet
from cashback.views import CashbackViewSet
from config.health import healthz, readyz
from members.views import MemberViewSet, OtpViewSet
from webhooks.views import WebhookViewSet

router = SimpleRouter(trailing_slash=False)
router.register("cashback", CashbackViewSet, basename="cashback")
router.register("cards", CardViewSet, basename="cards")
router.register("auth", OtpViewSet, basename="auth")
router.register("members", MemberViewSet, basename="members")
router.register("webhooks", WebhookViewSet, basename="webhooks")

api_docs = [
    path(
        "schema",
        SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]),
        name="schema",
    ),
    path(
        "docs",
        SpectacularSwaggerView.as_view(
            url_name="schema", authentication_classes=[], permission_classes=[]
        ),
        name="docs",
    ),
]

urlpatterns = [
    path("api/v1/cashback/", include(api_docs)),
    path("api/v1/cashback/", include(router.urls)),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("admin/", admin.site.urls),
]
