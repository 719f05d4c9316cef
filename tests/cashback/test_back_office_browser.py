"""A staff member in a real browser (Debian's headless Chromium, driven by Playwright): logs in,
changes a card's percentage, adjusts a wallet and finds the adjustment in the ledger list."""

import os
import shutil
from decimal import Decimal

import pytest
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.test.testcases import LiveServerThread

from cards.models import Card
from cashback.models import LedgerEntry, Wallet
from tests.factories import CardFactory, MemberFactory
from tests.helpers import give_balance

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # CI installs Chromium, so there a missing browser fails the test instead of skipping it.
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
        reason="no Chromium on this machine (.ci/run installs Debian's chromium)",
    ),
]

LAUNCH_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def server_url():
    """A live server started now, so that its handler reads the test settings (plain HTTP)."""
    thread = LiveServerThread("localhost", StaticFilesHandler)
    thread.daemon = True
    thread.start()
    thread.is_ready.wait()
    if thread.error:
        raise thread.error
    yield f"http://localhost:{thread.port}"
    thread.terminate()


@pytest.fixture
def back_office(server_url, django_user_model, merchant):
    django_user_model.objects.create_superuser("ops", "ops@example.com", "a-strong-passw0rd")
    card = CardFactory.create(app=merchant.app, name="Gold card", cashback_percentage=Decimal(5))
    member = MemberFactory.create(app=merchant.app, email="amira@example.com")
    give_balance(app=merchant.app, card=card, member=member, purchase="65")
    return server_url, card, Wallet.objects.get(card=card, member=member)


def test_staff_change_a_card_adjust_a_wallet_and_see_it_in_the_ledger(back_office, tmp_path):
    base, card, wallet = back_office
    # Playwright's sync API runs an event loop in this thread; the ORM is used only outside it.
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=LAUNCH_FLAGS
        )
        page = browser.new_page()
        page.goto(f"{base}/admin/login/")
        page.fill("#id_username", "ops")
        page.fill("#id_password", "a-strong-passw0rd")
        page.click("input[type=submit]")
        page.wait_for_url(f"{base}/admin/")

        page.goto(f"{base}/admin/cards/card/{card.pk}/change/")
        page.fill("#id_cashback_percentage", "7.5")
        page.click("input[name=_save]")
        page.wait_for_url(f"{base}/admin/cards/card/")
        assert "was changed successfully" in page.inner_text(".messagelist")

        page.goto(f"{base}/admin/cashback/wallet/{wallet.pk}/change/")
        page.click("text=Adjust balance")
        page.fill("#id_amount", "1.750")
        page.fill("#id_reason", "Receipt scanned late")
        page.click("text=Record adjustment")
        page.wait_for_url(f"{base}/admin/cashback/ledgerentry/?wallet__id__exact={wallet.pk}")
        assert "the balance is now 5.000 TND" in page.inner_text(".messagelist")
        rows = page.inner_text("#result_list")
        assert "Adjustment" in rows
        assert "1.750" in rows
        assert "ops" in rows
        page.screenshot(path=os.environ.get("BROWSER_SCREENSHOT", str(tmp_path / "ledger.png")))
        browser.close()

    assert Card.objects.get(pk=card.pk).cashback_percentage == Decimal("7.5")
    adjustment = LedgerEntry.objects.get(entry_type="adjustment")
    assert adjustment.created_by is not None
    assert adjustment.created_by.username == "ops"
    assert adjustment.metadata == {"reason": "Receipt scanned late"}
    assert Wallet.objects.get(pk=wallet.pk).balance == Decimal(5)
