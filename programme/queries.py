"""The programme's statements written out as SQL: real table and column names, named
parameters; each pastes into psql. What an earning takes from its rules (a use, a share of a
budget) is written by the earning's own statement (`cashback.queries.ENTRY_APPEND`).
`tests/core/test_queries.py` checks their names against the models."""

# The budgets of the rules %(rules)s of the app %(app)s as they are, each rule's row locked until
# the transaction ends, in the order every writer locks rules in (priority, then id): what an
# earn reads instead of the budgets left (`cashback.queries.PROGRAMME_FACTS`) when concurrent
# earns took from them since it read.
RULE_BUDGETS_LOCK = """
SELECT r.id, r.budget - r.budget_spent FROM programme_earningrule r
WHERE r.app_id = %(app)s AND r.id = ANY(%(rules)s::bigint[]) AND r.budget IS NOT NULL
ORDER BY r.priority, r.id
FOR UPDATE OF r
"""
