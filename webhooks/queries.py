"""The statements of the webhooks written out as SQL: real table and column names, named
parameters; each pastes into psql. `tests/core/test_queries.py` checks their names against the
models."""

# Saves a new event (`webhooks.models.EventDraft.params`): its body is %(event_head)s, its app's
# public id as a JSON string and %(event_tail)s; returns the event's id and body, and the ids of
# the app's endpoints that take its type (enabled, not deleted, with no `events` or with its type
# among them), in order. One round trip where the ORM takes three (the app's public id, the
# insert, the endpoints). The ledger's entries save their event in the statement that saves the
# entry (`cashback.queries.ENTRY_APPEND`), which holds the same two parts.
EVENT_INSERT = """
WITH ev AS (
    INSERT INTO webhooks_webhookevent (public_id, app_id, event_type, body, created_at)
    SELECT %(event_public_id)s::text, %(event_app)s::bigint, %(event_type)s::text,
        %(event_head)s::text || to_json(a.app_id)::text || %(event_tail)s::text,
        %(event_created_at)s::timestamptz
    FROM apps_auth_app a WHERE a.id = %(event_app)s
    RETURNING id, body
)
SELECT ev.id, ev.body,
    ARRAY(SELECT p.id FROM webhooks_webhookendpoint p
        WHERE p.app_id = %(event_app)s AND p.deleted_at IS NULL AND p.enabled
        AND (p.events = '[]'::jsonb OR p.events @> %(event_types)s::jsonb)
        ORDER BY p.id)
FROM ev
"""
