"""The switch ledger in the admin at a 1280 px laptop width, in headless Debian chromium:
every column, the taxes first, on screen without scrolling sideways."""

import os
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from tests.billing.caps.cap_fixtures import agent_session, event, oauth_user, reconcile, switch
from tests.web.test_picker_browser import TIMEOUT_MS, browser

__all__ = ["browser"]  # a fixture, used by name

SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR") or tempfile.gettempdir()) / "mk0r-screenshots"

pytestmark = [pytest.mark.timeout(120)]


@pytest.fixture
def ledger(transactional_db, django_user_model, monkeypatch):
    # Playwright's sync API keeps an event loop on this thread; these ORM calls are made outside it.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    django_user_model.objects.create_superuser("root", "root@example.com", "s3cret-pass")
    now = timezone.now()
    for k, name in enumerate(["a-user-with-a-rather-long-username@example.com", "bob"]):
        user = oauth_user(name)
        session = agent_session(user)
        at = now - timedelta(minutes=k)
        record = switch(user, session, at=at, frm="sonnet[1m]", to="opus[1m]", quoted="1.234567")
        follow = event(user, session_key=str(session.key), at=now, w1=60_000, miss="model_switch")
        follow.save()
        reconcile(record, follow, actual_tax="1.300000", actual_input="1.500000")
        switch(user, session, at=now - timedelta(hours=1), quoted="0.060787", outcome="failed")


def test_switch_list_fits_1280_px_with_the_taxes_first(browser, live_server, ledger):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(live_server.url + "/admin/login/?next=/admin/billing/switchrecord/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "s3cret-pass")
    page.click("input[type=submit]")
    page.wait_for_selector("#result_list")
    page.screenshot(path=str(SCREENSHOTS / "admin-switches-1280.png"))
    table = page.evaluate(
        """() => {
        const list = document.getElementById('result_list');
        const heads = [...list.querySelectorAll('thead th')].map((th) => ({
          text: th.innerText.trim(), right: th.getBoundingClientRect().right }));
        const box = list.closest('.results');
        return {
          heads, right: box.getBoundingClientRect().right,
          scroll: document.documentElement.scrollWidth - window.innerWidth,
          inner: box.scrollWidth - box.clientWidth,
        };
    }"""
    )
    named = [h for h in table["heads"] if h["text"]]
    assert [h["text"].lower() for h in named[:3]] == ["when (utc)", "quoted tax", "actual tax"], named
    assert table["scroll"] <= 0 and table["inner"] <= 0, table  # neither the page nor the list scrolls
    assert all(h["right"] <= table["right"] for h in table["heads"]), table
    cells = page.locator("#result_list tbody").inner_text()
    assert "$1.23" in cells and "$1.30" in cells and "$0.0608" in cells

    # The user's page: money in the totals, the chart's legend and the worst sessions.
    page.locator("#result_list tbody a", has_text="bob").first.click()
    page.wait_for_selector("svg")
    page.screenshot(path=str(SCREENSHOTS / "admin-user-costs-1280.png"), full_page=True)
    legend = page.locator("#content-main").inner_text()
    assert "top $1.30" in legend and "Total quoted tax\t$1.30" in legend
