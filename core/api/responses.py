from rest_framework.response import Response

# Says that a response is the replay of an earlier request's (Idempotency-Key or reference).
REPLAYED = "Idempotent-Replayed"
# Answers an Idempotency-Key never keeps: refused before the operation ran, so that a corrected
# retry runs; a 423 (the member's PIN locked) and a 429 say when to retry, and the retry under
# the same key runs then. Server errors are not kept either: a retry takes the key over.
NOT_KEPT = {400, 401, 403, 423, 429}


def ok(data, *, replayed: bool = False) -> Response:
    """The success envelope; a replayed operation says so in `Idempotent-Replayed`."""
    headers = {REPLAYED: "true"} if replayed else None
    return Response({"success": True, "data": data}, headers=headers)
