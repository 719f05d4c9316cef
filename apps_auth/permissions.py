"""Scopes as DRF permission classes. Authentication (401) runs first, then these (403)."""

from rest_framework.permissions import BasePermission

from apps_auth.models import Scope


class _HasScope(BasePermission):
    scope: str = ""
    message = "This app lacks the scope this endpoint needs."

    def has_permission(self, request, view) -> bool:
        app = request.auth
        if app is None:
            return False
        if not app.has_scope(self.scope):
            self.message = f"This app lacks the '{self.scope}' scope."
            return False
        return True


class HasCashbackRead(_HasScope):
    scope = Scope.CASHBACK_READ


class HasCashbackWrite(_HasScope):
    scope = Scope.CASHBACK_WRITE


class HasCardRead(_HasScope):
    scope = Scope.CARD_READ


class HasCardWrite(_HasScope):
    scope = Scope.CARD_WRITE


class HasWebhooks(_HasScope):
    scope = Scope.WEBHOOKS
