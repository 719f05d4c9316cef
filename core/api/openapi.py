"""The OpenAPI document and the docs page, as served: without credentials, throttled per client
address, and the document built once per process rather than per request, since building it
walks every view and anyone may ask for it.

The document is built without the request that first asks for it, so that nothing a caller
sends (a Host header, a language) shapes what every later caller is served.
"""

import threading

from django.conf import settings
from django.http import HttpResponse
from django.utils import translation
from drf_spectacular.settings import patched_settings
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.renderers import BaseRenderer
from rest_framework.views import APIView

from core.api.renderers import DecimalJSONRenderer
from core.api.throttling import AnonymousRateThrottle

_lock = threading.Lock()
_document: dict | None = None
_rendered: dict[type[BaseRenderer], bytes] = {}  # the document in each format asked for


def openapi_document_clear() -> None:
    """Forget the built document: the next request builds it again."""
    global _document
    with _lock:
        _document = None
        _rendered.clear()


class WithoutCredentials(APIView):
    """A view anyone may call: no authentication, no permission, a throttle per client
    address. Its errors are the API's JSON envelope, whatever format its answers are in."""

    authentication_classes = ()
    permission_classes = ()
    throttle_classes = (AnonymousRateThrottle,)

    def handle_exception(self, exc):
        # Else the error would come in the answer's own format: the document's YAML, the
        # page's HTML template.
        self.request.accepted_renderer = DecimalJSONRenderer()
        self.request.accepted_media_type = DecimalJSONRenderer.media_type
        return super().handle_exception(exc)


class OpenApiDocumentView(WithoutCredentials, SpectacularAPIView):
    """The OpenAPI document, as YAML or JSON by content negotiation (`?format=json`), built
    and rendered once per process and format."""

    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        renderer = request.accepted_renderer
        content_type = renderer.media_type
        if renderer.charset:
            content_type = f"{content_type}; charset={renderer.charset}"
        return HttpResponse(
            self._rendered(type(renderer)),
            content_type=content_type,
            headers={
                "Content-Disposition": f'inline; filename="{self._get_filename(request, None)}"'
            },
        )

    def _rendered(self, renderer_class: type[BaseRenderer]) -> bytes:
        global _document
        if (body := _rendered.get(renderer_class)) is not None:
            return body
        with _lock:
            if renderer_class not in _rendered:
                if _document is None:
                    _document = self._build()
                text = renderer_class().render(_document, renderer_class.media_type, {})
                _rendered[renderer_class] = text.encode() if isinstance(text, str) else text
            return _rendered[renderer_class]

    def _build(self) -> dict:
        generator = self.generator_class(
            urlconf=self.urlconf, api_version=self.api_version, patterns=self.patterns
        )
        with patched_settings(self.custom_settings), translation.override(settings.LANGUAGE_CODE):
            return generator.get_schema(request=None, public=self.serve_public)


class ApiDocsView(WithoutCredentials, SpectacularSwaggerView):
    """The interactive docs page (Swagger UI), reading the document above."""
