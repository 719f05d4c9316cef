import simplejson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder


class DecimalJSONRenderer(JSONRenderer):
    """Renders `Decimal` as an exact JSON number (`12.500`), never through a float."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        text = simplejson.dumps(
            data,
            use_decimal=True,
            default=JSONEncoder().default,
            ensure_ascii=False,
            separators=(",", ":"),
        )
        return text.encode("utf-8")
