"""A staff member in a real browser (Debian's headless Chromium, driven by Playwright): logs in,
changes a card's percentage, adjusts a wallet and finds the adjustment in the ledger list; reads
the dashboard and a member's page, and unlocks the member's PIN."""

import os
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.test.testcases import LiveServerThread

from cards.models import Card
from cashback.models import LedgerEntry, Wallet
from tests.cashback.back_office_seed import seed_back_office
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


DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def test_the_dashboard_a_rule_and_a_members_page_as_staff_see_them(
    server_url, django_user_model, merchant, tmp_path
):
    """Screenshots of the three pages from the real server: into docs/screenshots/ when
    `make screenshots` asks (DOCS_SCREENSHOTS=1), else beside the test's own files."""
    django_user_model.objects.create_superuser("ops", "ops@example.com", "a-strong-passw0rd")
    seeded = seed_back_office(merchant.app)
    member = seeded.members[0]
    screenshots = DOCS_SCREENSHOTS if os.environ.get("DOCS_SCREENSHOTS") else tmp_path
    screenshots.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=LAUNCH_FLAGS
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{server_url}/admin/login/")
        assert "Cashback back office" in page.title()
        assert page.inner_text("#site-name") == "Cashback back office"
        page.fill("#id_username", "ops")
        page.fill("#id_password", "a-strong-passw0rd")
        page.click("input[type=submit]")
        page.wait_for_url(f"{server_url}/admin/")

        assert page.inner_text("#site-name") == "Cashback back office"
        tnd = page.locator("#key-figures-TND")
        assert tnd.locator("[data-figure=liability]").inner_text() == "47.500 TND"
        assert tnd.locator("[data-figure=earned]").inner_text() == "67.000 TND"
        assert tnd.locator("[data-figure=redeemed]").inner_text() == "19.500 TND"
        eur = page.locator("#key-figures-EUR")
        assert eur.locator("[data-figure=liability]").inner_text() == "2.00 EUR"
        assert page.locator("svg[role=img]").count() == 6
        earned_bars = "#currency-TND svg[role=img] rect[fill='#2e7d32'] > title"
        assert page.locator(earned_bars).count() == 30
        campaigns = page.inner_text("#campaigns")
        assert "Weekend double" in campaigns
        assert "37%" in campaigns
        assert "Gold" in page.inner_text("#tiers")
        assert page.inner_text("#webhooks [data-figure=delivered]") == "2"
        assert page.inner_text("#webhooks [data-figure=failed]") == "1"
        page.screenshot(path=str(screenshots / "back-office-dashboard.png"), full_page=True)

        page.goto(f"{server_url}/admin/programme/earningrule/{seeded.rule.pk}/change/")
        page.fill("#id_preview-member", str(member.pk))
        page.fill("#id_preview-lines", "COF-1, coffee, 30\nMUG-1, kitchen, 20")
        page.click("#preview-submit")
        page.wait_for_selector("#preview-result")
        assert "TND" in page.inner_text("#preview-total")
        result = page.inner_text("#preview-result")
        assert "Coffee bonus" in result  # 3 % of the coffee line
        assert "tier Gold" in result  # the member's tier sets the base
        page.locator("#preview").scroll_into_view_if_needed()
        page.screenshot(path=str(screenshots / "back-office-rule-preview.png"), full_page=True)

        page.goto(f"{server_url}/admin/members/member/{member.pk}/change/")
        wallets = page.inner_text("#member-wallets")
        assert "20.500 TND" in wallets
        assert "2.00 EUR" in wallets
        assert "Gold" in wallets
        assert page.locator("#member-entries tbody tr").count() == 6
        assert "Locked until" in page.inner_text("#member-pin")
        assert page.locator("#member-set-tier").count() == 1
        page.screenshot(path=str(screenshots / "back-office-member.png"), full_page=True)

        page.click("#unlock-pin")
        page.wait_for_url(f"{server_url}/admin/members/member/{member.pk}/change/")
        assert "is unlocked" in page.inner_text(".messagelist")
        assert "Not locked" in page.inner_text("#member-pin")
        browser.close()

    member.refresh_from_db()
    assert member.pin_locked_until is None
