import json
from io import StringIO

import pytest
from django.core.management import call_command

from cashback.ledger_check import ledger_verify
from cashback.models import LedgerEntry, Wallet

pytestmark = pytest.mark.django_db(transaction=True)


def test_bench_seed_loads_a_consistent_ledger():
    out = StringIO()
    call_command("bench_seed", "--json", "--hot=50", "--total=125", "--per-wallet=30", stdout=out)
    result = json.loads(out.getvalue())
    assert result["entries"] == 125
    assert result["wallets"] == 4
    hot = Wallet.objects.get(member_id=result["hot_member_id"])
    assert LedgerEntry.objects.filter(wallet=hot).count() == 50
    assert hot.balance == 50 * LedgerEntry.objects.filter(wallet=hot).earliest("id").amount
    assert ledger_verify().mismatches == []
