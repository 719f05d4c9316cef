"""The statements of the members written out as SQL: real table and column names, named
parameters; each pastes into psql. `tests/core/test_queries.py` checks their names against the
models."""

# The app %(app)s's member with the id %(member_id)s, else the email %(email)s (as the column
# holds it: lower-cased), else the phone %(phone)s (E.164); the others NULL
# (`members.models.member_keys`). Its columns in the model's field order (`core.rows.from_row`).
# By id, one probe of the primary key; by email or phone, one of `member_email` or
# `member_phone_per_app` before it. Every earn by email or phone and every redeem reads its member.
MEMBER_OF_APP = """
SELECT m.id, m.app_id, m.name, m.email, m.phone, m.pin_hash, m.pin_failed_attempts,
    m.pin_locked_until, m.created_at
FROM members_member m
WHERE m.app_id = %(app)s AND m.id = COALESCE(%(member_id)s::bigint,
    (SELECT e.id FROM members_member e WHERE e.app_id = %(app)s AND e.email = %(email)s),
    (SELECT p.id FROM members_member p WHERE p.app_id = %(app)s AND p.phone = %(phone)s))
"""
