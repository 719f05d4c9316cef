from rest_framework.response import Response

# Says that a response is the replay of an earlier request's (Idempotency-Key or reference).
REPLAYED = "Idempotent-Replayed"


def ok(data, *, replayed: bool = False) -> Response:
    """The success envelope; a replayed operation says so in `Idempotent-Replayed`."""
    headers = {REPLAYED: "true"} if replayed else None
    return Response({"success": True, "data": data}, headers=headers)
