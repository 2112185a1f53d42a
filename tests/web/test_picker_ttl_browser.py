"""The picker page shows the cache lifetime the agent's writes use, as the quote does."""

from tests.conftest import client_for
from tests.web.test_picker_browser import (  # noqa: F401
    TIMEOUT_MS,
    _chat,
    _wait_for_usage,
    browser,
    database,
    live_stack,
    sign_in,
)


def test_a_flat_rate_session_shows_the_ttl_its_agent_writes_with(browser, live_stack):  # noqa: F811
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    with database():
        # The plan's default is 1 hour; the reference agent writes 5-minute entries.
        client = client_for("picker-flat", "max5", billing="oauth")
        client.user.set_password("s3cret-pass")
        client.user.save(update_fields=["password"])
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, live_stack.url, "picker-flat")
    page.get_by_role("button", name="New session").click()
    expect(page.locator("#session-info")).to_contain_text("cache lifetime 1h")

    # Long enough to be cached (Haiku 4.5 caches from 4,096 tokens).
    _chat(page, "Build a recipe app " + "with a detailed brief " * 1400)
    _wait_for_usage(page.evaluate("() => sessionStorage.getItem('mk0r.sessionKey')"), records=1)

    page.locator("input[name=model][value=sonnet]").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Cache lifetime5m")
    expect(page.locator("#session-info")).to_contain_text("cache lifetime 5m")
    dialog.get_by_role("button", name="Cancel").click()

    # A fresh load of the page shows the same.
    page.reload()
    expect(page.locator("#session-info")).to_contain_text("cache lifetime 5m")
