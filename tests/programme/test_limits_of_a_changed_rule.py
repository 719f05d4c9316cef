"""A rule's limit per member holds when marketing changes the live rule: its period changed
and changed back, its limit lifted and restored, or set to `ever`; and whatever order the earns'
clocks put them in around midnight. Each use is counted in the period of its earn, whose time
is never before the member's last on the card, and a period's count is never lost."""

from datetime import datetime
from unittest import mock

from cashback.ledger_check import ledger_verify
from cashback.models import Wallet, WalletManager
from programme.models import EarningRule
from programme.services import EarnCounters, rule_uses, uses_of
from tests.factories import CardFactory, RuleFactory
from tests.helpers import earn

RULE = "/api/v1/cashback/rules/{}"


def at(text: str):
    return mock.patch("django.utils.timezone.now", return_value=datetime.fromisoformat(text))


def applied(api, card, member, rule, when: str) -> bool:
    with at(when):
        answer = earn(api, card, member, "100")
    return rule.pk in [p["rule_id"] for p in answer["breakdown"]]


def test_a_weekly_limit_holds_after_its_period_goes_to_day_and_back(api, card, member):
    # The card's zone is Tunis (UTC+1); 7 December 2026 is a Monday.
    rule = RuleFactory.create(card=card, max_uses_per_member=1, per="week")
    assert applied(api, card, member, rule, "2026-12-07T12:00:00+00:00")
    assert not applied(api, card, member, rule, "2026-12-07T13:00:00+00:00")
    assert api.patch(RULE.format(rule.pk), {"per": "day"}).status_code == 200
    assert applied(api, card, member, rule, "2026-12-08T12:00:00+00:00")
    assert api.patch(RULE.format(rule.pk), {"per": "week"}).status_code == 200
    assert not applied(api, card, member, rule, "2026-12-09T12:00:00+00:00")


def test_a_monthly_limit_holds_after_it_is_lifted_and_restored(api, card, member):
    rule = RuleFactory.create(card=card, max_uses_per_member=1, per="month")
    assert applied(api, card, member, rule, "2026-12-02T12:00:00+00:00")
    lifted = {"max_uses_per_member": None, "per": None}
    assert api.patch(RULE.format(rule.pk), lifted).status_code == 200
    assert applied(api, card, member, rule, "2026-12-03T12:00:00+00:00")
    restored = {"max_uses_per_member": 1, "per": "month"}
    assert api.patch(RULE.format(rule.pk), restored).status_code == 200
    assert not applied(api, card, member, rule, "2026-12-04T12:00:00+00:00")


def test_an_earn_stamped_before_the_member_s_last_is_counted_at_the_last_s_time(api, card, member):
    # Two servers, one clock two seconds behind: an earn stamped 7 December (in Tunis) lands
    # after one of 8 December. The earn's time is its entry's, never before the wallet's last:
    # 8 December, whose one use is spent.
    rule = RuleFactory.create(card=card, max_uses_per_member=1, per="day")
    assert applied(api, card, member, rule, "2026-12-07T23:00:01+00:00")
    with at("2026-12-07T22:59:59+00:00"):
        late = earn(api, card, member, "100")
    assert rule.pk not in [p["rule_id"] for p in late["breakdown"]]
    assert late["earned_at"] == "2026-12-07T23:00:01Z"
    assert rule_uses([rule]) == {rule.pk: 1}
    assert applied(api, card, member, rule, "2026-12-08T23:00:00+00:00")  # 9 December


def test_a_limit_set_to_ever_counts_every_earlier_use(api, card, member):
    rule = RuleFactory.create(card=card, max_uses_per_member=2, per="month")
    assert applied(api, card, member, rule, "2026-11-02T12:00:00+00:00")
    assert applied(api, card, member, rule, "2026-12-02T12:00:00+00:00")
    assert api.patch(RULE.format(rule.pk), {"per": "ever"}).status_code == 200
    assert not applied(api, card, member, rule, "2026-12-03T12:00:00+00:00")
    assert api.patch(RULE.format(rule.pk), {"max_uses_per_member": 3}).status_code == 200
    assert applied(api, card, member, rule, "2026-12-04T12:00:00+00:00")
    assert not applied(api, card, member, rule, "2026-12-05T12:00:00+00:00")


def test_the_wallet_lock_reads_each_rule_s_latest_period_and_its_total(api, card, member):
    rule = RuleFactory.create(card=card, max_uses_per_member=1, per="day")
    for day in range(1, 31):  # a use a day through November
        assert applied(api, card, member, rule, f"2026-11-{day:02}T12:00:00+00:00")
    rule.per, rule.max_uses_per_member = "ever", 30
    rule.save()
    assert not applied(api, card, member, rule, "2026-12-01T12:00:00+00:00")  # 30 ever
    wallet = Wallet.objects.get(card=card, member=member)

    def read(per: str) -> list:
        EarningRule.objects.filter(pk=rule.pk).update(per=per)
        facts = Wallet.objects.programme_facts(
            app_id=card.app_id, card_id=card.pk, member_id=member.pk, budgeted=[]
        )
        assert facts is not None
        assert facts.pk == wallet.pk
        return [(r["per"], r["start"], r["uses"], r["total"]) for r in facts.rule_uses or ()]

    # One row a rule however long the history: the latest period of its kind, and its total.
    assert read("day") == [("day", "2026-11-30", 1, 30)]
    assert read("month") == [("month", "2026-11-01", 30, 30)]
    assert read("ever") == [("ever", "0001-01-01", 30, 30)]


def test_a_period_counted_after_this_earn_s_leaves_no_use_in_it(card, member):
    # The card's zone moved the calendar back: an earn's day is before the day last counted.
    rule = RuleFactory.create(card=card, max_uses_per_member=3, per="day")
    uses = uses_of([{"rule": rule.pk, "per": "day", "start": "2026-12-08", "uses": 1, "total": 1}])
    counters = EarnCounters(card=card, member_id=member.pk, uses=uses)
    assert counters.uses_left(rule, datetime.fromisoformat("2026-12-07T12:00:00+00:00")) == 0
    assert counters.uses_left(rule, datetime.fromisoformat("2026-12-08T12:00:00+00:00")) == 2
    assert counters.uses_left(rule, datetime.fromisoformat("2026-12-09T12:00:00+00:00")) == 3
    # Read with another period than this process holds the rule with: it changed meanwhile.
    weekly = uses_of([{"rule": rule.pk, "per": "week", "start": None, "uses": None, "total": 4}])
    counters = EarnCounters(card=card, member_id=member.pk, uses=weekly)
    assert counters.uses_left(rule, datetime.fromisoformat("2026-12-09T12:00:00+00:00")) == 0


def test_an_earn_that_settles_its_wallet_first_goes_by_its_entry_s_time(
    api, merchant, member, monkeypatch
):
    # The lock is taken just before midnight in Tunis; the held lot is due and the wallet is
    # settled, which takes the clock past midnight: the earn's entry is dated 8 December, and
    # so go its rules.
    import cashback.services.earn as earn_module

    card = CardFactory.create(app=merchant.app, cashback_holding_days=1)
    rule = RuleFactory.create(card=card, max_uses_per_member=1, per="day")
    with at("2026-12-06T12:00:00+00:00"):
        assert rule.pk in [p["rule_id"] for p in earn(api, card, member, "100")["breakdown"]]
    clock = {"now": datetime.fromisoformat("2026-12-07T22:59:59.990+00:00")}
    settle = earn_module.wallet_settle

    def settle_past_midnight(**kwargs):
        settle(**kwargs)
        clock["now"] = datetime.fromisoformat("2026-12-07T23:00:00.010+00:00")

    monkeypatch.setattr(earn_module, "wallet_settle", settle_past_midnight)
    with mock.patch("django.utils.timezone.now", side_effect=lambda: clock["now"]):
        settling = earn(api, card, member, "100")
    assert settling["earned_at"] == "2026-12-07T23:00:00.010000Z"  # 8 December in Tunis
    with at("2026-12-08T10:00:00+00:00"):
        next_day = earn(api, card, member, "100")
    applied = [rule.pk in [p["rule_id"] for p in e["breakdown"]] for e in (settling, next_day)]
    assert applied == [True, False]  # once on 8 December


def test_a_weekly_limit_of_two_holds_after_its_period_goes_to_day_and_back(api, card, member):
    rule = RuleFactory.create(card=card, max_uses_per_member=2, per="week")
    assert applied(api, card, member, rule, "2026-12-07T12:00:00+00:00")  # Monday
    assert api.patch(RULE.format(rule.pk), {"per": "day"}).status_code == 200
    assert applied(api, card, member, rule, "2026-12-08T12:00:00+00:00")  # Tuesday: 1 a day
    assert applied(api, card, member, rule, "2026-12-08T13:00:00+00:00")  # 2 a day
    assert api.patch(RULE.format(rule.pk), {"per": "week"}).status_code == 200
    # Three uses this week already; the rule says two.
    assert not applied(api, card, member, rule, "2026-12-09T12:00:00+00:00")


def test_a_daily_limit_made_weekly_counts_this_week_s_uses(api, card, member):
    rule = RuleFactory.create(card=card, max_uses_per_member=1, per="day")
    assert applied(api, card, member, rule, "2026-12-07T12:00:00+00:00")  # Monday
    assert applied(api, card, member, rule, "2026-12-08T12:00:00+00:00")  # Tuesday
    assert (
        api.patch(RULE.format(rule.pk), {"per": "week", "max_uses_per_member": 3}).status_code
        == 200
    )
    assert applied(api, card, member, rule, "2026-12-09T12:00:00+00:00")  # the third this week
    assert not applied(api, card, member, rule, "2026-12-10T12:00:00+00:00")
    assert applied(api, card, member, rule, "2026-12-14T12:00:00+00:00")  # next Monday


def test_a_limit_ever_made_daily_counts_today_s_use(api, card, member):
    rule = RuleFactory.create(card=card, max_uses_per_member=1, per="ever")
    assert applied(api, card, member, rule, "2026-12-07T10:00:00+00:00")
    assert api.patch(RULE.format(rule.pk), {"per": "day"}).status_code == 200
    assert not applied(api, card, member, rule, "2026-12-07T12:00:00+00:00")
    assert applied(api, card, member, rule, "2026-12-08T12:00:00+00:00")
    assert rule_uses([rule]) == {rule.pk: 2}


def test_an_earn_whose_wallet_has_a_lot_come_due_meanwhile_is_dated_by_its_rules_time(
    api, merchant, member, monkeypatch
):
    # The earn settles a lot due before midnight in Tunis; while its breakdown is computed the
    # clock passes midnight and a second lot comes due. The earn goes by its own time: its entry
    # is dated 7 December, its rules went by it, and the second lot waits for the next earn.
    import cashback.services.earn as earn_module

    card = CardFactory.create(app=merchant.app, cashback_holding_days=1)
    with at("2026-12-06T22:59:00+00:00"):  # available 23:59 on 7 December in Tunis
        earn(api, card, member, "100")
    with at("2026-12-06T23:00:00+00:00"):  # available at midnight, 8 December
        earn(api, card, member, "100")
    rule = RuleFactory.create(card=card, max_uses_per_member=1, per="day")
    clock = {"now": datetime.fromisoformat("2026-12-07T22:59:30+00:00")}
    breakdown = earn_module.breakdown_for

    def past_midnight(**kwargs):
        answer = breakdown(**kwargs)
        clock["now"] = datetime.fromisoformat("2026-12-07T23:00:30+00:00")
        return answer

    monkeypatch.setattr(earn_module, "breakdown_for", past_midnight)
    with mock.patch("django.utils.timezone.now", side_effect=lambda: clock["now"]):
        first = earn(api, card, member, "100")
    monkeypatch.setattr(earn_module, "breakdown_for", breakdown)
    with at("2026-12-07T23:01:00+00:00"):
        second = earn(api, card, member, "100")
    assert [first["earned_at"], second["earned_at"]] == [
        "2026-12-07T22:59:30Z",
        "2026-12-07T23:01:00Z",
    ]
    assert [rule.pk in [p["rule_id"] for p in e["breakdown"]] for e in (first, second)] == [
        True,
        True,
    ]


def test_an_earn_after_an_entry_dated_by_a_clock_ahead_settles_at_that_entry_s_time(
    api, merchant, member, monkeypatch
):
    card = CardFactory.create(app=merchant.app, cashback_holding_days=1)
    with at("2026-12-06T12:00:00+00:00"):  # held until 2026-12-07T12:00:00Z
        earn(api, card, member, "100")
    # Server A, its clock 30 s ahead: its earn's move checks the lots at 11:59:59 (nothing due),
    # waits 2 s for the wallet's lock, and dates its entry 12:00:01: the lot is still held.
    clock = {"now": datetime.fromisoformat("2026-12-07T11:59:59+00:00")}
    original = WalletManager.move

    def waited_for_the_lock(self, **kwargs):
        wallet = original(self, **kwargs)
        clock["now"] = datetime.fromisoformat("2026-12-07T12:00:01+00:00")
        return wallet

    monkeypatch.setattr(WalletManager, "move", waited_for_the_lock)  # server A
    with mock.patch("django.utils.timezone.now", side_effect=lambda: clock["now"]):
        first = earn(api, card, member, "100")
    monkeypatch.setattr(WalletManager, "move", original)
    assert first["earned_at"] == "2026-12-07T12:00:01Z"
    RuleFactory.create(card=card)  # the card now has a programme
    # Server B, on time: 11:59:35. Its earn goes by 12:00:01 (the wallet's last entry), when
    # the lot is due: it is settled then, and the earn is made.
    with at("2026-12-07T11:59:35+00:00"):
        second = earn(api, card, member, "100")
    assert second["earned_at"] == "2026-12-07T12:00:01Z"
    assert ledger_verify().mismatches == []
