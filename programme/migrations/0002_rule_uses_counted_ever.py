"""Every use of a rule is counted `ever` from now on, besides its period when the rule limits
uses: a rule's `uses` becomes the sum of its members' `ever` counts.

Before, each use was counted once, in the rule's period when it limited uses, else `ever`: each
member's `ever` count of a rule becomes the sum of all its counts of that rule, and the periods
its counts of days, weeks and months tell exactly are counted too (a day's in its week, month
and year, a week's in its month and year when it lies within them, a month's in its year). Going back, the counts of
the periods other than the rule's own go (the earlier code counted in no other), and the `ever`
count keeps what those of the rule's period do not hold.
"""

from django.db import migrations

FORWARD = """
INSERT INTO programme_ruleuse (app_id, member_id, rule_id, per, period_start, uses)
SELECT c.app_id, c.member_id, c.rule_id, c.per, c.period_start, sum(c.uses)
FROM (
    SELECT u.app_id, u.member_id, u.rule_id, 'ever' AS per, DATE '0001-01-01' AS period_start,
        u.uses
    FROM programme_ruleuse u WHERE u.per <> 'ever'
    UNION ALL
    SELECT u.app_id, u.member_id, u.rule_id, k.per,
        date_trunc(k.per, u.period_start::timestamp)::date, u.uses
    FROM programme_ruleuse u
    JOIN (VALUES ('day', 'week'), ('day', 'month'), ('day', 'year'), ('month', 'year'),
            ('week', 'month'), ('week', 'year'))
        AS k (counted, per) ON k.counted = u.per
    -- A week counts in its month or its year only when it lies within it.
    WHERE u.per <> 'week' OR date_trunc(k.per, u.period_start::timestamp)
        = date_trunc(k.per, u.period_start::timestamp + interval '6 days')
) AS c
GROUP BY c.app_id, c.member_id, c.rule_id, c.per, c.period_start
ON CONFLICT (app_id, member_id, rule_id, per, period_start)
DO UPDATE SET uses = programme_ruleuse.uses + excluded.uses
"""

BACKWARD = """
DELETE FROM programme_ruleuse u USING programme_earningrule r
WHERE r.id = u.rule_id AND u.per <> 'ever'
    AND u.per IS DISTINCT FROM (CASE WHEN r.max_uses_per_member IS NOT NULL THEN r.per END);
UPDATE programme_ruleuse e SET uses = e.uses - k.uses
FROM (
    SELECT u.app_id, u.member_id, u.rule_id, sum(u.uses) AS uses FROM programme_ruleuse u
    WHERE u.per <> 'ever' GROUP BY u.app_id, u.member_id, u.rule_id
) AS k
WHERE e.per = 'ever' AND e.app_id = k.app_id AND e.member_id = k.member_id
    AND e.rule_id = k.rule_id;
DELETE FROM programme_ruleuse WHERE per = 'ever' AND uses = 0;
"""


class Migration(migrations.Migration):
    dependencies = [("programme", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
