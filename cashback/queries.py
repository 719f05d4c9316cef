"""The ledger's statements written out as SQL: real table and column names, named parameters,
each pasteable into psql. They are the hot path's, where composing a query with the ORM cost a
worker more CPU than running it, or statements the ORM cannot say (an `UPDATE ... RETURNING`,
an `INSERT ... ON CONFLICT DO NOTHING RETURNING`, data-modifying `WITH`). Each is run by one
manager method of `cashback.models`, prepared (`core.rows.prepared_cursor`): PostgreSQL plans
it once per connection. No parameter of one decides which parts run by changing its text: a
part a call does not need is switched off by a parameter (NULL, false, an empty array), so that
the statement, and its plan, is the same at every call.

`tests/core/test_queries.py` plans each one on the schema the migrations build and checks the
columns each reads and writes against the models' fields.
"""

# How many lots, besides a named one, a spend reads before it knows whether they cover it.
SPEND_HEAD = 16
# How many instants a balance lists the wallet's cashback to expire at (`upcoming_expiries`).
UPCOMING_EXPIRIES = 10

# Saves a new wallet as its first entry leaves it (`WalletManager.insert_new`), unless the
# member has one on the card already; returns its id and the id its first entry takes, drawn
# from the entries' sequence. The row stays locked, as a new row is, until the transaction ends.
WALLET_INSERT = """
INSERT INTO cashback_wallet (app_id, member_id, card_id, balance, pending_balance,
    entries_count, inactive_at, created_at, updated_at)
VALUES (%(app_id)s, %(member_id)s, %(card_id)s, %(balance)s, %(pending_balance)s,
    %(entries_count)s, %(inactive_at)s, %(created_at)s, %(updated_at)s)
ON CONFLICT DO NOTHING
RETURNING id, nextval(pg_get_serial_sequence('cashback_ledgerentry', 'id'))
"""

# Saves a new member (its fields as %(member_...)s) and its new wallet, as `WALLET_INSERT`
# does, in one statement (`WalletManager.insert_new_with_member`); nothing when the member's
# email or phone is its app's already. Returns the member's id, the wallet's and the id the
# wallet's first entry takes. Cast, as a SELECT list gives the columns no type to infer from.
MEMBER_WALLET_INSERT = """
WITH member AS (
    INSERT INTO members_member (app_id, name, email, phone, pin_hash, pin_failed_attempts,
        pin_locked_until, created_at)
    VALUES (%(member_app_id)s, %(member_name)s, %(member_email)s, %(member_phone)s,
        %(member_pin_hash)s, %(member_pin_failed_attempts)s, %(member_pin_locked_until)s,
        %(member_created_at)s)
    ON CONFLICT DO NOTHING
    RETURNING id
)
INSERT INTO cashback_wallet (app_id, member_id, card_id, balance, pending_balance,
    entries_count, inactive_at, created_at, updated_at)
SELECT %(app_id)s::bigint, member.id, %(card_id)s::bigint, %(balance)s::numeric(20, 4),
    %(pending_balance)s::numeric(20, 4), %(entries_count)s::bigint,
    %(inactive_at)s::timestamptz, %(created_at)s::timestamptz, %(updated_at)s::timestamptz
FROM member
RETURNING member_id, id, nextval(pg_get_serial_sequence('cashback_ledgerentry', 'id'))
"""

# Moves the wallet on the card %(card)s of the app %(app)s's member with the id %(member_id)s,
# else the email %(email)s, else the phone %(phone)s (`members.models.member_keys`; found in
# the same statement): %(amount)s onto its spendable balance, %(pending)s onto its pending one,
# one entry more; `WalletManager.move`. Only when, with %(covered)s, the spendable balance stays
# at or above zero; with %(unlocked)s, the member's PIN is not locked at %(now)s; with
# %(settled)s, none of the wallet's lots is due for release or past its expiry at %(now)s (one
# probe of `lot_wallet_held`, one of `lot_wallet_expiring`) and the wallet is not past its
# `inactive_at` (as the row had it before the move). With %(earning)s, `inactive_at` becomes
# %(inactive_at)s. Returns the wallet's columns in the model's field order, then the id its
# next entry takes (drawn from the entries' sequence) and the time of its last entry. The row
# stays locked until the transaction ends; the check constraint refuses a balance below zero.
WALLET_MOVE = """
UPDATE cashback_wallet w
SET balance = w.balance + %(amount)s, pending_balance = w.pending_balance + %(pending)s,
    entries_count = w.entries_count + 1,
    inactive_at = CASE WHEN %(earning)s THEN %(inactive_at)s::timestamptz ELSE w.inactive_at END,
    updated_at = %(now)s
WHERE w.app_id = %(app)s AND w.card_id = %(card)s
    AND w.member_id = COALESCE(%(member_id)s::bigint,
        (SELECT m.id FROM members_member m WHERE m.app_id = %(app)s AND m.email = %(email)s),
        (SELECT m.id FROM members_member m WHERE m.app_id = %(app)s AND m.phone = %(phone)s))
    AND (NOT %(covered)s OR w.balance + %(amount)s >= 0)
    AND (NOT %(unlocked)s OR NOT EXISTS (SELECT 1 FROM members_member l
        WHERE l.app_id = %(app)s AND l.id = w.member_id AND l.pin_locked_until > %(now)s))
    AND (NOT %(settled)s OR (
        NOT EXISTS (SELECT 1 FROM cashback_lot x WHERE x.app_id = %(app)s
            AND x.wallet_id = w.id AND x.pending > 0 AND x.available_at <= %(now)s)
        AND NOT EXISTS (SELECT 1 FROM cashback_lot x WHERE x.app_id = %(app)s
            AND x.wallet_id = w.id AND x.remaining > 0 AND x.expires_at IS NOT NULL
            AND x.expires_at <= %(now)s)
        AND (w.inactive_at IS NULL OR w.inactive_at > %(now)s)))
RETURNING w.id, w.app_id, w.member_id, w.card_id, w.balance, w.pending_balance,
    w.entries_count, w.inactive_at, w.created_at, w.updated_at,
    nextval(pg_get_serial_sequence('cashback_ledgerentry', 'id')),
    (SELECT e.created_at FROM cashback_ledgerentry e WHERE e.app_id = %(app)s
        AND e.wallet_id = w.id ORDER BY e.sequence DESC LIMIT 1)
"""

# The member's wallet on the card, read with when it next needs settling before an earn decides
# (its earliest held lot's `available_at`, its earliest `expires_at` of a lot with something
# left: what `wallet_settle` settles; the wallet's own `inactive_at` comes with it) and what the
# card's programme asks of the member: whether it earned on the card before, its tier on the
# card, its uses of the card's active rules that limit uses (each rule's latest period of its
# own kind, as the rule's row has it now, and its uses in all; `programme.services.MemberUses`:
# two index probes a rule however long the member's history), and what is left of the budgets
# of the rules %(budgeted)s (amounts as text: JSON would make them floats). Each an index probe.
# No parameter is a time: the plan is the same at every earn, and PostgreSQL keeps the prepared
# statement's generic plan instead of planning it again each time (which cost more than running
# it). `fresh` is whether the row is the version the statement's snapshot holds: always so here;
# see `LOCK_FOR_PROGRAMME`. A quote reads it as it stands.
PROGRAMME_FACTS = """
SELECT w.id, w.inactive_at,
    (SELECT min(x.available_at) FROM cashback_lot x WHERE x.app_id = w.app_id
        AND x.wallet_id = w.id AND x.pending > 0) AS next_available_at,
    (SELECT min(x.expires_at) FROM cashback_lot x WHERE x.app_id = w.app_id
        AND x.wallet_id = w.id AND x.remaining > 0 AND x.expires_at IS NOT NULL)
        AS next_expiry_at,
    EXISTS (SELECT 1 FROM cashback_ledgerentry e WHERE e.app_id = w.app_id
        AND e.wallet_id = w.id AND e.entry_type = 'earning') AS earned,
    (SELECT t.tier_id FROM programme_membertier t WHERE t.app_id = w.app_id
        AND t.card_id = w.card_id AND t.member_id = w.member_id) AS member_tier_id,
    (SELECT json_agg(json_build_object('rule', r.id, 'per', r.per,
            'start', latest.period_start, 'uses', latest.uses, 'total', ever.uses))
        FROM programme_earningrule r
        LEFT JOIN LATERAL (SELECT u.period_start, u.uses FROM programme_ruleuse u
            WHERE u.app_id = w.app_id AND u.member_id = w.member_id AND u.rule_id = r.id
            AND u.per = r.per ORDER BY u.period_start DESC LIMIT 1) latest ON true
        LEFT JOIN programme_ruleuse ever ON ever.app_id = w.app_id
            AND ever.member_id = w.member_id AND ever.rule_id = r.id AND ever.per = 'ever'
            AND ever.period_start = DATE '0001-01-01'
        WHERE r.app_id = w.app_id AND r.card_id = w.card_id AND r.active
        AND r.max_uses_per_member IS NOT NULL) AS rule_uses,
    (SELECT json_object_agg(r.id, (r.budget - r.budget_spent)::text)
        FROM programme_earningrule r WHERE r.app_id = w.app_id
        AND r.id = ANY(%(budgeted)s::bigint[]) AND r.budget IS NOT NULL) AS budgets_left,
    w.xmin = (SELECT v.xmin FROM cashback_wallet v WHERE v.app_id = w.app_id AND v.id = w.id)
        AS fresh
FROM cashback_wallet w
WHERE w.app_id = %(app)s AND w.card_id = %(card)s AND w.member_id = %(member)s
"""
# The same with the wallet locked until the transaction ends, and what its next entry needs: its
# balances, the id the entry takes (drawn from the entries' sequence) and the time of its last
# entry, so that the earn's entry moves the wallet in its own statement
# (`ENTRY_APPEND_FOR_PROGRAMME`). An
# earn's first statement on a card with a programme. A statement that waited for the lock reads
# its subqueries as they stood when it started (its snapshot), and one that started just before
# another's commit does too, though it finds the row free: then the row it locked (whose own
# columns are the latest) is a later version than its snapshot's (every writer of these facts
# changes the wallet's row in its transaction: an entry moves it; a tier set apart from an entry
# touches it, `cashback.services.tiers`), `fresh` is false, and the earn runs the statement
# again, which reads them as they are under the lock.
LOCK_FOR_PROGRAMME = """
SELECT w.id, w.inactive_at,
    (SELECT min(x.available_at) FROM cashback_lot x WHERE x.app_id = w.app_id
        AND x.wallet_id = w.id AND x.pending > 0) AS next_available_at,
    (SELECT min(x.expires_at) FROM cashback_lot x WHERE x.app_id = w.app_id
        AND x.wallet_id = w.id AND x.remaining > 0 AND x.expires_at IS NOT NULL)
        AS next_expiry_at,
    EXISTS (SELECT 1 FROM cashback_ledgerentry e WHERE e.app_id = w.app_id
        AND e.wallet_id = w.id AND e.entry_type = 'earning') AS earned,
    (SELECT t.tier_id FROM programme_membertier t WHERE t.app_id = w.app_id
        AND t.card_id = w.card_id AND t.member_id = w.member_id) AS member_tier_id,
    (SELECT json_agg(json_build_object('rule', r.id, 'per', r.per,
            'start', latest.period_start, 'uses', latest.uses, 'total', ever.uses))
        FROM programme_earningrule r
        LEFT JOIN LATERAL (SELECT u.period_start, u.uses FROM programme_ruleuse u
            WHERE u.app_id = w.app_id AND u.member_id = w.member_id AND u.rule_id = r.id
            AND u.per = r.per ORDER BY u.period_start DESC LIMIT 1) latest ON true
        LEFT JOIN programme_ruleuse ever ON ever.app_id = w.app_id
            AND ever.member_id = w.member_id AND ever.rule_id = r.id AND ever.per = 'ever'
            AND ever.period_start = DATE '0001-01-01'
        WHERE r.app_id = w.app_id AND r.card_id = w.card_id AND r.active
        AND r.max_uses_per_member IS NOT NULL) AS rule_uses,
    (SELECT json_object_agg(r.id, (r.budget - r.budget_spent)::text)
        FROM programme_earningrule r WHERE r.app_id = w.app_id
        AND r.id = ANY(%(budgeted)s::bigint[]) AND r.budget IS NOT NULL) AS budgets_left,
    w.xmin = (SELECT v.xmin FROM cashback_wallet v WHERE v.app_id = w.app_id AND v.id = w.id)
        AS fresh,
    w.balance, w.pending_balance,
    nextval(pg_get_serial_sequence('cashback_ledgerentry', 'id')) AS next_entry_id,
    (SELECT e.created_at FROM cashback_ledgerentry e WHERE e.app_id = w.app_id
        AND e.wallet_id = w.id ORDER BY e.sequence DESC LIMIT 1) AS last_entry_at
FROM cashback_wallet w
WHERE w.app_id = %(app)s AND w.card_id = %(card)s AND w.member_id = %(member)s
FOR UPDATE OF w
"""

# Saves a new entry (`LedgerEntryManager.append`), each field as %(<attribute>)s, with what must
# exist if and only if the entry does, in the same statement: with %(lot_available_at)s (NULL:
# none), the lot a credit opens (held until then, spendable at once, expiring at
# %(lot_expires_at)s, NULL: never); and the entry's webhook event
# (`webhooks.models.EventDraft.params`), saved as `webhooks.queries.EVENT_INSERT` saves one.
# The entry is numbered in its wallet (`sequence`) and among the wallet's entries of its type
# (`type_sequence`), one after the wallet's last (one probe each of `entry_wallet_sequence` and
# `entry_wallet_type_sequence`), its `created_at` never before the wallet's last entry's. The
# caller holds the wallet's row locked: entries are numbered one at a time. Cast, as the server
# binds the parameters and a SELECT list gives no type to those that may be NULL. Returns the
# entry's id, `created_at`, `sequence` and `type_sequence`, the lot's id (NULL: none), the
# event's id and body, and the ids of the app's endpoints that take it.
#
# Each of the three entry statements stays within what psycopg keeps converted (4,096
# characters, 50 parameters: `tests/core/test_queries.py`); a longer one is parsed again at
# every call. They share their parts' text, which the same test keeps the same.
ENTRY_APPEND = """
WITH e AS (
    INSERT INTO cashback_ledgerentry (id, app_id, wallet_id, card_id, entry_type, event, amount,
    balance_after, pending_amount, pending_balance_after, purchase_amount, refund_amount,
    cashback_percentage, unrecovered_amount, original_entry_id, reference, metadata, breakdown,
    lines, member_created, request_fingerprint, created_by_id, approved_by_id,
    idempotency_record_id, created_at, sequence, type_sequence)
    SELECT %(id)s, %(app_id)s, %(wallet_id)s, %(card_id)s, %(entry_type)s, %(event)s, %(amount)s,
    %(balance_after)s, %(pending_amount)s, %(pending_balance_after)s,
    %(purchase_amount)s::numeric, %(refund_amount)s::numeric, %(cashback_percentage)s::numeric,
    %(unrecovered_amount)s, %(original_entry_id)s::bigint, %(reference)s, %(metadata)s::jsonb,
    %(breakdown)s::jsonb, %(lines)s::jsonb, %(member_created)s, %(request_fingerprint)s,
    %(created_by_id)s::integer, %(approved_by_id)s::integer, %(idempotency_record_id)s::bigint,
    GREATEST(%(created_at)s, last.created_at), COALESCE(last.sequence, 0) + 1,
    COALESCE(last_of_type.type_sequence, 0) + 1
    FROM (SELECT) o
    LEFT JOIN LATERAL (SELECT x.created_at, x.sequence FROM cashback_ledgerentry x
    WHERE x.app_id = %(app_id)s AND x.wallet_id = %(wallet_id)s
    ORDER BY x.sequence DESC LIMIT 1) last ON true
    LEFT JOIN LATERAL (SELECT x.type_sequence FROM cashback_ledgerentry x
    WHERE x.app_id = %(app_id)s AND x.wallet_id = %(wallet_id)s AND x.entry_type = %(entry_type)s
    ORDER BY x.type_sequence DESC LIMIT 1) last_of_type ON true
    RETURNING id, app_id, wallet_id, amount, pending_amount, created_at, sequence,
        type_sequence
),
lot AS (
    INSERT INTO cashback_lot (app_id, wallet_id, source_id, pending, remaining, available_at,
        expires_at, created_at)
    SELECT e.app_id, e.wallet_id, e.id, e.pending_amount, e.amount,
        %(lot_available_at)s::timestamptz, %(lot_expires_at)s::timestamptz, e.created_at
    FROM e WHERE %(lot_available_at)s::timestamptz IS NOT NULL
    RETURNING id
),
ev AS (
    INSERT INTO webhooks_webhookevent (public_id, app_id, event_type, body, created_at)
    SELECT %(event_public_id)s::text, %(event_app)s::bigint, %(event_type)s::text,
        %(event_head)s::text || to_json(a.app_id)::text || %(event_tail)s::text,
        %(event_created_at)s::timestamptz
    FROM apps_auth_app a WHERE a.id = %(event_app)s
    RETURNING id, body
)
SELECT e.id, e.created_at, e.sequence, e.type_sequence, lot.id, ev.id, ev.body,
    ARRAY(SELECT p.id FROM webhooks_webhookendpoint p
        WHERE p.app_id = %(event_app)s AND p.deleted_at IS NULL AND p.enabled
        AND (p.events = '[]'::jsonb OR p.events @> %(event_types)s::jsonb)
        ORDER BY p.id)
FROM e CROSS JOIN ev LEFT JOIN lot ON true
"""

# The same for a redemption's entry, which opens no lot and takes %(spend_amount)s out of the
# wallet's lots (%(spend_first)s first, then the oldest), recording its movements, as
# `LOT_SPEND` does. Returns what `ENTRY_APPEND` returns, the lot's id NULL.
ENTRY_APPEND_SPENDING = """
WITH e AS (
    INSERT INTO cashback_ledgerentry (id, app_id, wallet_id, card_id, entry_type, event, amount,
    balance_after, pending_amount, pending_balance_after, purchase_amount, refund_amount,
    cashback_percentage, unrecovered_amount, original_entry_id, reference, metadata, breakdown,
    lines, member_created, request_fingerprint, created_by_id, approved_by_id,
    idempotency_record_id, created_at, sequence, type_sequence)
    SELECT %(id)s, %(app_id)s, %(wallet_id)s, %(card_id)s, %(entry_type)s, %(event)s, %(amount)s,
    %(balance_after)s, %(pending_amount)s, %(pending_balance_after)s,
    %(purchase_amount)s::numeric, %(refund_amount)s::numeric, %(cashback_percentage)s::numeric,
    %(unrecovered_amount)s, %(original_entry_id)s::bigint, %(reference)s, %(metadata)s::jsonb,
    %(breakdown)s::jsonb, %(lines)s::jsonb, %(member_created)s, %(request_fingerprint)s,
    %(created_by_id)s::integer, %(approved_by_id)s::integer, %(idempotency_record_id)s::bigint,
    GREATEST(%(created_at)s, last.created_at), COALESCE(last.sequence, 0) + 1,
    COALESCE(last_of_type.type_sequence, 0) + 1
    FROM (SELECT) o
    LEFT JOIN LATERAL (SELECT x.created_at, x.sequence FROM cashback_ledgerentry x
    WHERE x.app_id = %(app_id)s AND x.wallet_id = %(wallet_id)s
    ORDER BY x.sequence DESC LIMIT 1) last ON true
    LEFT JOIN LATERAL (SELECT x.type_sequence FROM cashback_ledgerentry x
    WHERE x.app_id = %(app_id)s AND x.wallet_id = %(wallet_id)s AND x.entry_type = %(entry_type)s
    ORDER BY x.type_sequence DESC LIMIT 1) last_of_type ON true
    RETURNING id, app_id, wallet_id, amount, pending_amount, created_at, sequence,
        type_sequence
),
ev AS (
    INSERT INTO webhooks_webhookevent (public_id, app_id, event_type, body, created_at)
    SELECT %(event_public_id)s::text, %(event_app)s::bigint, %(event_type)s::text,
        %(event_head)s::text || to_json(a.app_id)::text || %(event_tail)s::text,
        %(event_created_at)s::timestamptz
    FROM apps_auth_app a WHERE a.id = %(event_app)s
    RETURNING id, body
),
head AS (
    SELECT id, remaining, available_at, true AS named FROM cashback_lot
    WHERE app_id = %(app_id)s AND wallet_id = %(wallet_id)s AND remaining > 0
        AND id = %(spend_first)s::bigint AND %(spend_amount)s::numeric IS NOT NULL
    UNION ALL (
        SELECT id, remaining, available_at, false FROM cashback_lot
        WHERE app_id = %(app_id)s AND wallet_id = %(wallet_id)s AND remaining > 0
            AND id IS DISTINCT FROM %(spend_first)s::bigint
            AND %(spend_amount)s::numeric IS NOT NULL
        ORDER BY available_at, id LIMIT 16)
),
covered AS (SELECT COALESCE(SUM(remaining), 0) >= %(spend_amount)s::numeric AS yes FROM head),
candidates AS (
    SELECT id, remaining, available_at, named FROM head WHERE (SELECT yes FROM covered)
    UNION ALL
    SELECT id, remaining, available_at, COALESCE(id = %(spend_first)s::bigint, false)
    FROM cashback_lot
    WHERE app_id = %(app_id)s AND wallet_id = %(wallet_id)s AND remaining > 0
        AND NOT (SELECT yes FROM covered)
),
ordered AS (
    SELECT id, remaining,
        SUM(remaining) OVER (ORDER BY named DESC, available_at, id) - remaining AS before
    FROM candidates
),
taken AS (
    SELECT id, LEAST(remaining, %(spend_amount)s::numeric - before) AS amount FROM ordered
    WHERE before < %(spend_amount)s::numeric
),
spent AS (
    UPDATE cashback_lot l SET remaining = l.remaining - taken.amount FROM taken
    WHERE l.app_id = %(app_id)s AND l.id = taken.id
    RETURNING l.id, taken.amount
),
moved AS (
    INSERT INTO cashback_lotmovement (app_id, entry_id, lot_id, amount, pending_amount)
    SELECT %(app_id)s, %(id)s, id, -amount, 0 FROM spent
)
SELECT e.id, e.created_at, e.sequence, e.type_sequence, NULL::bigint, ev.id, ev.body,
    ARRAY(SELECT p.id FROM webhooks_webhookendpoint p
        WHERE p.app_id = %(event_app)s AND p.deleted_at IS NULL AND p.enabled
        AND (p.events = '[]'::jsonb OR p.events @> %(event_types)s::jsonb)
        ORDER BY p.id)
FROM e CROSS JOIN ev
"""

# The same for an earning on a card with a programme, which always opens its lot, and besides:
# - takes what the earning gave of each rule's budget, %(budget_taken)s of the rules
#   %(budget_rules)s (`programme.services.EarnCounters.budget_params`; none: empty arrays),
#   locking the rules' rows first, in the order every writer locks rules in (priority, then id;
#   `programme.services.rule_budget_return` too), and before the entry is inserted (its row
#   waits for their count), as an earn that locked its budgets first does
#   (`programme.queries.RULE_BUDGETS_LOCK`): two earns never wait for each other's. The check
#   constraint `rule_budget_spent_within` refuses the statement when concurrent earns left less
#   than the earn read.
# - with %(move_now)s (NULL: none), moves the wallet, which the caller holds locked and read
#   (`LOCK_FOR_PROGRAMME`), by %(move_amount)s and %(move_pending)s, setting its `inactive_at`
#   to %(move_inactive_at)s: a round trip less than `WALLET_MOVE`. The entry is saved only if
#   the wallet moved.
# - counts a use of each rule the earning applied, in each of its periods
#   (`programme.services.rule_uses_params`; none: empty arrays).
ENTRY_APPEND_FOR_PROGRAMME = """
WITH budgets AS (
    UPDATE programme_earningrule r SET budget_spent = r.budget_spent + t.taken
    FROM (SELECT l.id, u.taken FROM programme_earningrule l
    JOIN unnest(%(budget_rules)s::bigint[], %(budget_taken)s::numeric[]) AS u (rule_id, taken)
    ON u.rule_id = l.id WHERE l.app_id = %(app_id)s ORDER BY l.priority, l.id FOR UPDATE OF l) t
    WHERE r.app_id = %(app_id)s AND r.id = t.id RETURNING r.id
),
wallet_moved AS (
    UPDATE cashback_wallet w SET balance = w.balance + %(move_amount)s,
    pending_balance = w.pending_balance + %(move_pending)s, entries_count = w.entries_count + 1,
    inactive_at = %(move_inactive_at)s, updated_at = %(move_now)s
    WHERE w.app_id = %(app_id)s AND w.id = %(wallet_id)s
    AND %(move_now)s::timestamptz IS NOT NULL
    RETURNING w.id
),
e AS (
    INSERT INTO cashback_ledgerentry (id, app_id, wallet_id, card_id, entry_type, event, amount,
    balance_after, pending_amount, pending_balance_after, purchase_amount, refund_amount,
    cashback_percentage, unrecovered_amount, original_entry_id, reference, metadata, breakdown,
    lines, member_created, request_fingerprint, created_by_id, approved_by_id,
    idempotency_record_id, created_at, sequence, type_sequence)
    SELECT %(id)s, %(app_id)s, %(wallet_id)s, %(card_id)s, %(entry_type)s, %(event)s, %(amount)s,
    %(balance_after)s, %(pending_amount)s, %(pending_balance_after)s,
    %(purchase_amount)s::numeric, %(refund_amount)s::numeric, %(cashback_percentage)s::numeric,
    %(unrecovered_amount)s, %(original_entry_id)s::bigint, %(reference)s, %(metadata)s::jsonb,
    %(breakdown)s::jsonb, %(lines)s::jsonb, %(member_created)s, %(request_fingerprint)s,
    %(created_by_id)s::integer, %(approved_by_id)s::integer, %(idempotency_record_id)s::bigint,
    GREATEST(%(created_at)s, last.created_at), COALESCE(last.sequence, 0) + 1,
    COALESCE(last_of_type.type_sequence, 0) + 1
    FROM (SELECT) o
    LEFT JOIN LATERAL (SELECT x.created_at, x.sequence FROM cashback_ledgerentry x
    WHERE x.app_id = %(app_id)s AND x.wallet_id = %(wallet_id)s
    ORDER BY x.sequence DESC LIMIT 1) last ON true
    LEFT JOIN LATERAL (SELECT x.type_sequence FROM cashback_ledgerentry x
    WHERE x.app_id = %(app_id)s AND x.wallet_id = %(wallet_id)s AND x.entry_type = %(entry_type)s
    ORDER BY x.type_sequence DESC LIMIT 1) last_of_type ON true
    WHERE (SELECT count(*) FROM budgets) >= 0
    AND (%(move_now)s::timestamptz IS NULL OR (SELECT count(*) FROM wallet_moved) = 1)
    RETURNING id, app_id, wallet_id, amount, pending_amount, created_at, sequence,
        type_sequence
),
lot AS (
    INSERT INTO cashback_lot (app_id, wallet_id, source_id, pending, remaining, available_at,
        expires_at, created_at)
    SELECT e.app_id, e.wallet_id, e.id, e.pending_amount, e.amount,
        %(lot_available_at)s::timestamptz, %(lot_expires_at)s::timestamptz, e.created_at
    FROM e
    RETURNING id
),
ev AS (
    INSERT INTO webhooks_webhookevent (public_id, app_id, event_type, body, created_at)
    SELECT %(event_public_id)s::text, %(event_app)s::bigint, %(event_type)s::text,
        %(event_head)s::text || to_json(a.app_id)::text || %(event_tail)s::text,
        %(event_created_at)s::timestamptz
    FROM apps_auth_app a WHERE a.id = %(event_app)s
    RETURNING id, body
),
uses AS (
    INSERT INTO programme_ruleuse (app_id, member_id, rule_id, per, period_start, uses)
    SELECT %(app_id)s, %(uses_member)s, u.rule_id, u.per, u.period_start, 1
    FROM unnest(%(uses_rules)s::bigint[], %(uses_pers)s::varchar[], %(uses_starts)s::date[])
    AS u (rule_id, per, period_start) ON CONFLICT (app_id, member_id, rule_id, per, period_start)
    DO UPDATE SET uses = programme_ruleuse.uses + 1
)
SELECT e.id, e.created_at, e.sequence, e.type_sequence, lot.id, ev.id, ev.body,
    ARRAY(SELECT p.id FROM webhooks_webhookendpoint p
        WHERE p.app_id = %(event_app)s AND p.deleted_at IS NULL AND p.enabled
        AND (p.events = '[]'::jsonb OR p.events @> %(event_types)s::jsonb)
        ORDER BY p.id)
FROM e CROSS JOIN ev LEFT JOIN lot ON true
"""

# Takes %(spend_amount)s out of the lots of the wallet %(wallet_id)s of the app %(app_id)s
# (%(spend_first)s first, then the oldest by `available_at`) and records what came out of each
# as the movements of the entry %(id)s (`LotManager.spend`); a redemption's entry does it in its
# own statement (`ENTRY_APPEND_SPENDING`, the same text). A running total picks the lots, an
# UPDATE takes from each, an INSERT records each movement. The total is over the named lot and the
# `SPEND_HEAD` oldest others, read in the order of the `lot_spendable` index, when they cover the
# amount (nearly always: the oldest lot alone usually does); over all of the wallet's lots with
# something left otherwise. A wallet holds a lot per earning, and a spend that read them all cost
# PostgreSQL a sort of hundreds of rows per redemption. The caller holds the wallet's row locked
# and takes no more than its spendable balance, which its lots add up to.
LOT_SPEND = """
WITH head AS (
    SELECT id, remaining, available_at, true AS named FROM cashback_lot
    WHERE app_id = %(app_id)s AND wallet_id = %(wallet_id)s AND remaining > 0
        AND id = %(spend_first)s::bigint AND %(spend_amount)s::numeric IS NOT NULL
    UNION ALL (
        SELECT id, remaining, available_at, false FROM cashback_lot
        WHERE app_id = %(app_id)s AND wallet_id = %(wallet_id)s AND remaining > 0
            AND id IS DISTINCT FROM %(spend_first)s::bigint
            AND %(spend_amount)s::numeric IS NOT NULL
        ORDER BY available_at, id LIMIT 16)
),
covered AS (SELECT COALESCE(SUM(remaining), 0) >= %(spend_amount)s::numeric AS yes FROM head),
candidates AS (
    SELECT id, remaining, available_at, named FROM head WHERE (SELECT yes FROM covered)
    UNION ALL
    SELECT id, remaining, available_at, COALESCE(id = %(spend_first)s::bigint, false)
    FROM cashback_lot
    WHERE app_id = %(app_id)s AND wallet_id = %(wallet_id)s AND remaining > 0
        AND NOT (SELECT yes FROM covered)
),
ordered AS (
    SELECT id, remaining,
        SUM(remaining) OVER (ORDER BY named DESC, available_at, id) - remaining AS before
    FROM candidates
),
taken AS (
    SELECT id, LEAST(remaining, %(spend_amount)s::numeric - before) AS amount FROM ordered
    WHERE before < %(spend_amount)s::numeric
),
spent AS (
    UPDATE cashback_lot l SET remaining = l.remaining - taken.amount FROM taken
    WHERE l.app_id = %(app_id)s AND l.id = taken.id
    RETURNING l.id, taken.amount
),
moved AS (
    INSERT INTO cashback_lotmovement (app_id, entry_id, lot_id, amount, pending_amount)
    SELECT %(app_id)s, %(id)s, id, -amount, 0 FROM spent
)
SELECT 1
"""

# The numbers of the oldest and the newest of the wallet %(wallet)s's entries (of the app
# %(app)s) created from %(after)s and up to %(before)s (each NULL: no bound), NULL when there is
# none: one lookup each in `entry_wallet_history` (or the numbers' own unique index). Without a
# bound the oldest is the first entry, numbered 1. `LedgerEntryManager.history_page`.
HISTORY_ENDS = """
SELECT
    CASE WHEN %(after)s::timestamptz IS NULL THEN 1 ELSE
        (SELECT e.sequence FROM cashback_ledgerentry e
            WHERE e.app_id = %(app)s AND e.wallet_id = %(wallet)s
            AND e.created_at >= %(after)s::timestamptz
            ORDER BY e.created_at, e.id LIMIT 1) END,
    CASE WHEN %(before)s::timestamptz IS NULL THEN
        (SELECT e.sequence FROM cashback_ledgerentry e
            WHERE e.app_id = %(app)s AND e.wallet_id = %(wallet)s
            ORDER BY e.sequence DESC LIMIT 1)
    ELSE
        (SELECT e.sequence FROM cashback_ledgerentry e
            WHERE e.app_id = %(app)s AND e.wallet_id = %(wallet)s
            AND e.created_at <= %(before)s::timestamptz
            ORDER BY e.created_at DESC, e.id DESC LIMIT 1) END
"""
# The same among the wallet's entries of the type %(type)s, by their `type_sequence`: one lookup
# each in `entry_wallet_type_history` (or the numbers' own unique index).
HISTORY_ENDS_OF_TYPE = """
SELECT
    CASE WHEN %(after)s::timestamptz IS NULL THEN 1 ELSE
        (SELECT e.type_sequence FROM cashback_ledgerentry e
            WHERE e.app_id = %(app)s AND e.wallet_id = %(wallet)s AND e.entry_type = %(type)s
            AND e.created_at >= %(after)s::timestamptz
            ORDER BY e.created_at, e.id LIMIT 1) END,
    CASE WHEN %(before)s::timestamptz IS NULL THEN
        (SELECT e.type_sequence FROM cashback_ledgerentry e
            WHERE e.app_id = %(app)s AND e.wallet_id = %(wallet)s AND e.entry_type = %(type)s
            ORDER BY e.type_sequence DESC LIMIT 1)
    ELSE
        (SELECT e.type_sequence FROM cashback_ledgerentry e
            WHERE e.app_id = %(app)s AND e.wallet_id = %(wallet)s AND e.entry_type = %(type)s
            AND e.created_at <= %(before)s::timestamptz
            ORDER BY e.created_at DESC, e.id DESC LIMIT 1) END
"""

# The wallet's entries numbered from %(low)s to %(high)s, newest first, their columns in the
# model's field order: one range of `entry_wallet_sequence`.
HISTORY_RANGE = """
SELECT e.id, e.app_id, e.wallet_id, e.card_id, e.entry_type, e.event, e.amount, e.balance_after,
    e.pending_amount, e.pending_balance_after, e.purchase_amount, e.refund_amount,
    e.cashback_percentage, e.unrecovered_amount, e.original_entry_id, e.reference, e.metadata,
    e.breakdown, e.lines, e.member_created, e.request_fingerprint, e.created_by_id,
    e.approved_by_id, e.idempotency_record_id, e.sequence, e.type_sequence, e.created_at
FROM cashback_ledgerentry e
WHERE e.app_id = %(app)s AND e.wallet_id = %(wallet)s AND e.sequence BETWEEN %(low)s AND %(high)s
ORDER BY e.sequence DESC
"""
# The same among the wallet's entries of the type %(type)s: one range of
# `entry_wallet_type_sequence`.
HISTORY_RANGE_OF_TYPE = """
SELECT e.id, e.app_id, e.wallet_id, e.card_id, e.entry_type, e.event, e.amount, e.balance_after,
    e.pending_amount, e.pending_balance_after, e.purchase_amount, e.refund_amount,
    e.cashback_percentage, e.unrecovered_amount, e.original_entry_id, e.reference, e.metadata,
    e.breakdown, e.lines, e.member_created, e.request_fingerprint, e.created_by_id,
    e.approved_by_id, e.idempotency_record_id, e.sequence, e.type_sequence, e.created_at
FROM cashback_ledgerentry e
WHERE e.app_id = %(app)s AND e.wallet_id = %(wallet)s AND e.entry_type = %(type)s
    AND e.type_sequence BETWEEN %(low)s AND %(high)s
ORDER BY e.type_sequence DESC
"""

# The app %(app)s's card %(card)s (its columns in the model's field order), whether the member
# %(member)s is the app's, the member's wallet on the card (a LEFT JOIN), and what of its lots
# the clock has moved since the worker last came by: the rest of lots past their expiry, and
# the held cashback due (and of it, what is past its expiry too), each an index range
# (`lot_wallet_expiring`, `lot_wallet_held`); and its spendable cashback to expire after
# %(now)s: the soonest `UPCOMING_EXPIRIES` instants before the wallet's `inactive_at` with what
# expires at each (two arrays, of the lots released and of the held lots due; an ordered range
# of `lot_wallet_expiring` read up to its tenth instant, and one of `lot_wallet_held`), and,
# when `inactive_at` is to come, what expires then (all the rest). Balance and history start
# here (`cashback.selectors.member_card`).
MEMBER_CARD = """
SELECT c.id, c.app_id, c.unique_identifier, c.name, c.description, c.reward_system,
    c.cashback_percentage, c.cashback_min_amount, c.cashback_max_amount,
    c.allows_pin_redemption, c.cashback_holding_days, c.cashback_expiry_days,
    c.cashback_expiry_policy, c.cashback_expiry_date, c.cashback_inactivity_days,
    c.tier_period_days, c.tier_retention_days, c.time_zone, c.currency, c.is_active,
    c.created_at,
    w.id, w.balance, w.pending_balance, w.entries_count, w.inactive_at,
    EXISTS (SELECT 1 FROM members_member m WHERE m.id = %(member)s AND m.app_id = %(app)s),
    (SELECT COALESCE(SUM(x.remaining), 0) FROM cashback_lot x
        WHERE x.app_id = %(app)s AND x.wallet_id = w.id AND x.remaining > 0
        AND x.expires_at IS NOT NULL AND x.expires_at <= %(now)s),
    due.pending, due.expired, up.ats, up.amounts,
    CASE WHEN w.inactive_at > %(now)s THEN
        (SELECT COALESCE(SUM(x.remaining), 0)
            + COALESCE(SUM(x.pending) FILTER (WHERE x.pending > 0 AND x.available_at <= %(now)s), 0)
        FROM cashback_lot x WHERE x.app_id = %(app)s AND x.wallet_id = w.id
            AND (x.remaining > 0 OR (x.pending > 0 AND x.available_at <= %(now)s))
            AND (x.expires_at IS NULL OR x.expires_at >= w.inactive_at)) END
FROM cards_card c
LEFT JOIN cashback_wallet w ON w.card_id = c.id AND w.member_id = %(member)s
    AND w.app_id = %(app)s
LEFT JOIN LATERAL (
    SELECT COALESCE(SUM(x.pending), 0) AS pending,
        COALESCE(SUM(x.pending) FILTER (WHERE x.expires_at <= %(now)s), 0) AS expired
    FROM cashback_lot x WHERE x.app_id = %(app)s AND x.wallet_id = w.id
        AND x.pending > 0 AND x.available_at <= %(now)s
) due ON true
LEFT JOIN LATERAL (
    SELECT array_agg(u.at) AS ats, array_agg(u.amount) AS amounts FROM (
        (SELECT x.expires_at AS at, SUM(x.remaining) AS amount FROM cashback_lot x
            WHERE x.app_id = %(app)s AND x.wallet_id = w.id AND x.remaining > 0
            AND x.expires_at IS NOT NULL AND x.expires_at > %(now)s
            AND (w.inactive_at IS NULL OR x.expires_at < w.inactive_at)
            GROUP BY x.expires_at ORDER BY x.expires_at LIMIT 10)
        UNION ALL
        (SELECT x.expires_at AS at, SUM(x.pending) AS amount FROM cashback_lot x
            WHERE x.app_id = %(app)s AND x.wallet_id = w.id
            AND x.pending > 0 AND x.available_at <= %(now)s
            AND x.expires_at IS NOT NULL AND x.expires_at > %(now)s
            AND (w.inactive_at IS NULL OR x.expires_at < w.inactive_at)
            GROUP BY x.expires_at ORDER BY x.expires_at LIMIT 10)
    ) u
) up ON true
WHERE c.id = %(card)s AND c.app_id = %(app)s
"""

# Entries whose breakdown does not add up to what they moved: each wallet with one, and its
# latest such entry (`cashback.ledger_check.ledger_verify`).
BREAKDOWNS_OFF_THEIR_ENTRY = """
SELECT e.wallet_id, max(e.id)
FROM cashback_ledgerentry e
WHERE e.breakdown IS NOT NULL
  AND (SELECT COALESCE(SUM((part ->> 'amount')::numeric), 0)
       FROM jsonb_array_elements(e.breakdown) AS part) <> e.amount + e.pending_amount
GROUP BY e.wallet_id
"""


# Copies the earnings `bench_seed` writes into a wallet's history, a row each (`COPY`).
SEED_ENTRIES = """
COPY cashback_ledgerentry (app_id, wallet_id, card_id, entry_type, event, amount, balance_after,
    pending_amount, pending_balance_after, purchase_amount, cashback_percentage,
    unrecovered_amount, metadata, request_fingerprint, created_at, sequence, type_sequence)
FROM STDIN
"""

# Opens a lot for each entry of the wallet %(wallet)s, as the earning made it: spendable since
# its entry and never expiring. For the entries `bench_seed` copies in, which have none.
SEED_LOTS = """
INSERT INTO cashback_lot (app_id, wallet_id, source_id, pending, remaining, available_at,
    created_at)
SELECT app_id, wallet_id, id, 0, amount, created_at, created_at
FROM cashback_ledgerentry WHERE wallet_id = %(wallet)s
"""
