"""Content negotiation for an API that answers in JSON."""

from rest_framework.negotiation import DefaultContentNegotiation


class JsonContentNegotiation(DefaultContentNegotiation):
    """A view with one renderer (every API view: JSON) answers with it whatever `Accept` says,
    rather than a 406 that no client could act on, and without parsing the header on every
    request (8 % of a balance's CPU). Views that offer several formats (the OpenAPI document:
    YAML or JSON) negotiate as DRF does."""

    def select_renderer(self, request, renderers, format_suffix=None):
        if len(renderers) == 1:
            return renderers[0], renderers[0].media_type
        return super().select_renderer(request, renderers, format_suffix)
