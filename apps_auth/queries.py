"""The statements of the merchants' apps written out as SQL: real table and column names, named
parameters; each pastes into psql. `tests/core/test_queries.py` checks their names against the
models."""

# Claims the key %(key)s of the app %(app_id)s for a request (`IdempotencyRecord`'s fields as
# `core.rows.prepared_values` names them): the new record's id, or no row when the key is the
# app's already (the unique constraint `idempotency_key_per_app`), and nothing is written. One
# round trip, on its own outside a transaction, so that a twin request sees the key at once;
# without the savepoint an INSERT that fails needs inside one. Every till sends a key.
IDEMPOTENCY_CLAIM = """
INSERT INTO cashback_idempotencyrecord (app_id, key, request_fingerprint, state, lease_until,
    response_status, response_body, created_at)
VALUES (%(app_id)s, %(key)s, %(request_fingerprint)s, %(state)s, %(lease_until)s,
    %(response_status)s, %(response_body)s, %(created_at)s)
ON CONFLICT (app_id, key) DO NOTHING
RETURNING id
"""

# Keeps the response (%(status)s, %(body)s) of the request that ran under the record %(id)s of
# the app %(app)s, for its replays.
IDEMPOTENCY_COMPLETE = """
UPDATE cashback_idempotencyrecord SET state = 'completed', response_status = %(status)s,
    response_body = %(body)s
WHERE app_id = %(app)s AND id = %(id)s
"""
