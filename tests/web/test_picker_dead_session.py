"""The picker in a real browser when a session's sandbox has stopped, and its Close and
Resume buttons (the live service with local sandboxes, as in test_picker_browser.py)."""

import pytest

from sessions_app.models import AgentSession
from sessions_app.sandboxes import local
from tests.web import test_picker_browser as picker_browser
from tests.web.test_picker_browser import SCREENSHOTS, TIMEOUT_MS, _user, database, sign_in

# The same browser and live service as the picker's main test.
browser = picker_browser.browser
live_stack = picker_browser.live_stack

pytestmark = [pytest.mark.timeout(120)]


def _signed_in_page(browser, url: str, username: str):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    return page, sign_in(page, url, username)


def test_a_stopped_sandbox_is_said_plainly_and_the_session_can_be_closed(browser, live_stack):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    with database():
        _user("picker-gone", "pro")
    page, errors = _signed_in_page(browser, live_stack.url, "picker-gone")

    page.get_by_role("button", name="New session").click()
    expect(page.locator("#current-model")).to_have_text("Scary")
    expect(page.get_by_role("button", name="Close")).to_be_enabled()
    key = page.evaluate("() => sessionStorage.getItem('mk0r.sessionKey')")

    # Resume on a running session changes nothing, and says so.
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#status")).to_have_text("The agent still has this session: nothing to resume.")

    with database():
        sandbox_id = AgentSession.objects.get(key=key).sandbox_id
    local.LocalProvider().stop(sandbox_id=sandbox_id)  # as a restarted `make run` leaves it

    page.get_by_label("Message to the agent").fill("Are you there?")
    page.get_by_role("button", name="Send").click()
    gone = page.locator("#gone")
    expect(gone).to_be_visible()
    expect(gone).to_contain_text("This session's sandbox has stopped: start a new session.")
    expect(gone.get_by_role("button", name="Start a new session")).to_be_visible()
    expect(page.locator("#alert")).to_be_hidden()  # not "try again in a moment"
    expect(page.get_by_role("button", name="Send")).to_be_disabled()
    expect(page.get_by_role("button", name="Resume")).to_be_disabled()
    expect(page.locator("#session-select option:checked")).to_contain_text("stopped")
    page.screenshot(path=str(SCREENSHOTS / "picker-sandbox-gone.png"))

    # A reload still shows it, from the session's own status.
    page.reload()
    expect(page.locator("#gone")).to_be_visible()

    page.get_by_role("button", name="Close").click()
    expect(page.locator("#status")).to_have_text("Session closed: its sandbox is stopped.")
    expect(page.locator("#gone")).to_be_hidden()
    expect(page.locator(f"#session-select option[value='{key}']")).to_have_count(0)
    with database():
        assert AgentSession.objects.get(key=key).status == "closed"

    # The way out: a new session that works.
    page.get_by_role("button", name="New session").click()
    expect(page.locator("#status")).to_contain_text("Session started")
    assert page.evaluate("() => sessionStorage.getItem('mk0r.sessionKey')") != key
    assert not errors, errors


def test_the_notice_button_starts_a_new_session(browser, live_stack):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    with database():
        _user("picker-gone-2", "pro")
    page, errors = _signed_in_page(browser, live_stack.url, "picker-gone-2")
    page.get_by_role("button", name="New session").click()
    expect(page.locator("#current-model")).to_have_text("Scary")
    key = page.evaluate("() => sessionStorage.getItem('mk0r.sessionKey')")
    with database():
        local.LocalProvider().stop(sandbox_id=AgentSession.objects.get(key=key).sandbox_id)

    # The quote needs no agent; confirming the switch finds the sandbox gone.
    page.locator("input[name=model][value=sonnet]").click()
    page.get_by_role("dialog").get_by_role("button", name="Confirm switch").click()
    expect(page.get_by_role("dialog")).to_be_hidden()
    expect(page.locator("#gone")).to_be_visible()
    page.locator("#gone").get_by_role("button", name="Start a new session").click()

    expect(page.locator("#status")).to_contain_text("Session started")
    expect(page.locator("#gone")).to_be_hidden()
    assert page.evaluate("() => sessionStorage.getItem('mk0r.sessionKey')") != key
    assert not errors, errors
