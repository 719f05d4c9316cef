"""The statements of the cards written out as SQL: real table and column names, named
parameters; each pastes into psql. `tests/core/test_queries.py` checks their names against the
models."""

# The app %(app)s's card %(card)s, its columns in the model's field order (`core.rows.from_row`):
# one probe of the primary key. Every operation reads its card first.
CARD_OF_APP = """
SELECT c.id, c.app_id, c.unique_identifier, c.name, c.description, c.reward_system,
    c.cashback_percentage, c.cashback_min_amount, c.cashback_max_amount,
    c.allows_pin_redemption, c.cashback_holding_days, c.cashback_expiry_days,
    c.cashback_expiry_policy, c.cashback_expiry_date, c.cashback_inactivity_days,
    c.tier_period_days, c.tier_retention_days, c.time_zone, c.currency, c.is_active,
    c.created_at
FROM cards_card c
WHERE c.id = %(card)s AND c.app_id = %(app)s
"""
