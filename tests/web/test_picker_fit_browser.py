"""The picker page on a phone and on a laptop: no sideways scrolling, models the plan refuses
shown locked with the reason (and never asked for), every amount by the one money rule.

Same stack as test_picker_browser (live service, local sandboxes, headless Debian chromium).
Screenshots go to $SCREENSHOT_DIR (default: the system's temporary folder).
"""

import os
import re
import tempfile
from pathlib import Path

import pytest

from tests.web.test_picker_browser import (
    TIMEOUT_MS,
    _chat,
    _user,
    _wait_for_usage,
    browser,
    database,
    live_stack,
    sign_in,
)

__all__ = ["browser", "live_stack"]  # fixtures, used by name

SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR") or tempfile.gettempdir()) / "mk0r-screenshots"
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 800}
# billing/money.py and picker.js: $1 or more in cents, below a dollar to four places.
MONEY = re.compile(r"−?(?:\$0\.\d{4}|\$[1-9][\d,]*\.\d{2}|\$0\.00|<\$0\.0001)")
ANY_AMOUNT = re.compile(r"−?<?\$[\d,]*\.?\d*")

pytestmark = [pytest.mark.timeout(180)]


def _new_session(page) -> None:
    from playwright.sync_api import expect

    page.get_by_role("button", name="New session").click()
    expect(page.locator("#current-model")).to_have_text("Scary")
    expect(page.locator("#status")).to_contain_text("Session started")


def _overflow(page) -> dict:
    """How far the page, and the session drop-down's text, stick out of their boxes (px)."""
    return page.evaluate(
        """() => {
        const select = document.getElementById('session-select');
        const style = getComputedStyle(select);
        const ctx = document.createElement('canvas').getContext('2d');
        ctx.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
        const text = select.options[select.selectedIndex].text;
        // The drop-down's arrow takes about 24 px of its content box.
        const room = select.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight) - 24;
        return {
          page: document.documentElement.scrollWidth - window.innerWidth,
          selectText: Math.ceil(ctx.measureText(text).width - room),
          text,
        };
    }"""
    )


def test_phone_width_fits_and_the_free_plan_sees_locked_models(browser, live_stack):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    with database():
        _user("picker-free", "free")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport=PHONE)
    switch_calls: list[str] = []
    page.on("request", lambda r: switch_calls.append(r.url) if "/api/chat/model" in r.url else None)

    sign_in(page, live_stack.url, "picker-free")
    _new_session(page)
    # A second session: the drop-down then holds two long entries.
    _new_session(page)
    fit = _overflow(page)
    assert fit["page"] <= 0, f"the page scrolls sideways by {fit['page']} px at 390 px"
    assert fit["selectText"] <= 0, f"the drop-down cuts {fit['text']!r} off"

    # Paid models are locked, with the reason, before anything is asked.
    for model_id in ("sonnet", "sonnet[1m]", "opus"):
        choice = page.locator(".choice", has=page.locator(f"input[value='{model_id}']"))
        expect(choice).to_have_class(re.compile(r"\blocked\b"))
        expect(choice.locator(".choice-lock")).to_have_text("Locked: Needs a paid plan")
    expect(page.locator(".choice", has=page.locator("input[value=haiku]")).locator(".choice-lock")).to_have_count(0)
    page.screenshot(path=str(SCREENSHOTS / "picker-phone-locked.png"), full_page=True)

    # Choosing one says why and sends nothing: no quote, no switch.
    # (aria-disabled: Playwright would wait for it to be enabled; a person just clicks.)
    page.get_by_text("Fast", exact=True).click(force=True)
    expect(page.locator("#alert")).to_have_text("This model needs a paid subscription. Upgrade your plan to use it.")
    expect(page.locator("input[name=model][value=haiku]")).to_be_checked()
    expect(page.get_by_role("dialog")).to_be_hidden()
    page.locator("input[name=model][value=opus]").focus()
    page.keyboard.press("Space")  # from the keyboard too
    expect(page.locator("input[name=model][value=haiku]")).to_be_checked()
    page.wait_for_timeout(300)  # any request the clicks started would have left by now
    assert switch_calls == []
    assert _overflow(page)["page"] <= 0


def test_laptop_and_phone_quote_dialog_show_money_by_one_rule(browser, live_stack):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    with database():
        _user("picker-money", "pro")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport=LAPTOP)
    sign_in(page, live_stack.url, "picker-money")
    _new_session(page)
    fit = _overflow(page)
    assert fit["page"] <= 0 and fit["selectText"] <= 0, fit

    # A long first message: the switch's cache rebuild then costs cents, beside sub-cent figures.
    _chat(page, "Build a todo app. " + "Keep every todo in local storage and show it in a list. " * 500)
    _wait_for_usage(page.evaluate("() => sessionStorage.getItem('mk0r.sessionKey')"), records=1)
    page.locator("input[name=model][value=sonnet]").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Switch tax")
    shown = dialog.locator("#quote-summary").inner_text() + "\n" + dialog.locator("#quote-details").inner_text()
    amounts = ANY_AMOUNT.findall(shown)
    assert len(amounts) >= 4, shown
    assert all(MONEY.fullmatch(a) for a in amounts), amounts
    assert any(MONEY.fullmatch(a) and not a.startswith("$0.0000") and a != "$0.00" for a in amounts), amounts
    page.screenshot(path=str(SCREENSHOTS / "picker-laptop-quote.png"))

    page.set_viewport_size(PHONE)
    assert page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth") <= 0
    dialog_overflow = (
        "() => { const d = document.getElementById('quote-dialog'); return d.scrollWidth - d.clientWidth; }"
    )
    assert page.evaluate(dialog_overflow) <= 0
    page.screenshot(path=str(SCREENSHOTS / "picker-phone-quote.png"))

    # Confirmed, the drop-down names the session by its new model and keeps it selected.
    dialog.get_by_role("button", name="Confirm switch").click()
    page.wait_for_function(
        "() => !document.getElementById('quote-dialog').open || !document.getElementById('quote-notice').hidden"
    )
    if dialog.is_visible():  # the quote went stale meanwhile: the dialog shows the fresh one
        dialog.get_by_role("button", name="Confirm switch").click()
    expect(page.locator("#current-model")).to_have_text("Fast")
    key = page.evaluate("() => sessionStorage.getItem('mk0r.sessionKey')")
    assert page.locator("#session-select").input_value() == key
    assert page.evaluate(
        "() => { const s = document.getElementById('session-select'); return s.options[s.selectedIndex].text; }"
    ).startswith("Fast · ")
    assert _overflow(page)["page"] <= 0
