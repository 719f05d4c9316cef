from rest_framework.response import Response

from config.api.idempotency import REPLAYED


def ok(data, *, replayed: bool = False) -> Response:
    """The success envelope; a replayed operation says so in `Idempotent-Replayed`."""
    headers = {REPLAYED: "true"} if replayed else None
    return Response({"success": True, "data": data}, headers=headers)
