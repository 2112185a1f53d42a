"""The picker page in a real browser against the live service and the local stack.

Headless Debian chromium (make browser-deps installs it) driven by Playwright; the
sandbox is the local provider: vm_bridge as a subprocess, the devstack reference agent,
the devstack emulator. Screenshots land in var/screenshots/ (gitignored).
"""

import contextlib
import os
import shutil
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import override_settings

from sessions_app.sandboxes import local
from tests.asgi_server import DB_LOCK
from tests.conftest import client_for

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(django_settings.BASE_DIR) / "var" / "screenshots"
TIMEOUT_MS = 30_000


@contextlib.contextmanager
def database():
    """ORM use from the test body: one view of the live server at a time (see live_stack), and
    the connection closed after, since with Playwright running pytest-django does not see it."""
    with DB_LOCK:
        try:
            yield
        finally:
            connection.close()


pytestmark = [pytest.mark.timeout(120)]


@pytest.fixture
def browser():
    if not (os.path.exists(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"{CHROMIUM} is missing (make browser-deps installs it with apt-get)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements/dev.txt)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def live_stack(asgi_live_server, settings, tmp_path_factory, monkeypatch):
    """The service on its ASGI server with local sandboxes whose usage relay posts back to it."""
    # Playwright's sync API keeps an event loop on this thread; the ORM calls of the test are
    # made between browser steps, never from inside the loop.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    root = tmp_path_factory.mktemp("sandboxes")
    settings.SANDBOX_PROVIDER = "local"
    settings.LOCAL_SANDBOX_ROOT = root
    settings.PUBLIC_BASE_URL = asgi_live_server.url
    settings.BRIDGE_READ_TIMEOUT = 20.0
    yield asgi_live_server
    with override_settings(LOCAL_SANDBOX_ROOT=root):
        local.local_stack_stop()  # the session the page opened, and the emulator
    shutil.rmtree(root, ignore_errors=True)


def _user(username: str, plan: str) -> None:
    client = client_for(username, plan)
    client.user.set_password("s3cret-pass")
    client.user.save(update_fields=["password"])


def sign_in(page, url: str, username: str) -> list[str]:
    """The picker page at `url`, signed in as `username` (a user made by `_user`). Returns the
    list the page's script errors are collected into."""
    from playwright.sync_api import expect

    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url + "/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("s3cret-pass")
    page.get_by_label("Password").press("Enter")
    expect(page.locator("#whoami-name")).to_have_text(username)
    return errors


def _chat(page, prompt: str) -> None:
    page.get_by_label("Message to the agent").fill(prompt)
    page.keyboard.press("Control+Enter")
    page.wait_for_function(
        "() => document.getElementById('status').textContent.startsWith('Turn done')"
        " || !document.getElementById('alert').hidden",
        timeout=TIMEOUT_MS,
    )
    assert page.locator("#alert").is_hidden(), page.locator("#alert").inner_text()
    assert page.get_by_label("Message to the agent").input_value() == ""


def _wait_for_usage(session_key: str, *, records: int, timeout: float = 20.0) -> None:
    """Until the bridge's relay has delivered the turns' usage, so that the quote reflects them.

    Should it take longer, the test goes on: the confirm then meets a stale quote and the page
    shows the fresh one, which the test handles too."""
    from billing.models import UsageEvent

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with database():
            if UsageEvent.objects.filter(session_key=session_key).count() >= records:
                return
        time.sleep(0.2)


def test_sign_in_chat_quote_confirm_switch(browser, live_stack):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    with database():
        _user("picker-pro", "pro")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    console_errors: list[str] = []
    # Script errors only: the browser also logs every 4xx/5xx answer, and some are expected here.
    page.on(
        "console",
        lambda m: (
            console_errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on("pageerror", lambda e: console_errors.append(str(e)))

    page.goto(live_stack.url + "/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    # A wrong password is a readable message, and the form stays.
    page.get_by_label("Username").fill("picker-pro")
    page.get_by_label("Password").fill("wrong")
    page.get_by_label("Password").press("Enter")
    expect(page.locator("#alert")).to_have_text("Wrong username or password.")

    page.get_by_label("Password").fill("s3cret-pass")
    page.get_by_label("Password").press("Enter")
    expect(page.locator("#whoami-name")).to_have_text("picker-pro")
    assert page.evaluate("() => sessionStorage.getItem('mk0r.token')")

    page.get_by_role("button", name="New session").click()
    expect(page.locator("#current-model")).to_have_text("Scary")
    expect(page.locator("input[name=model][value=haiku]")).to_be_checked()
    # The hints name the models the session's agent runs for each picker id.
    expect(page.locator("label.choice:has(input[value=haiku]) .choice-hint")).to_have_text("Haiku 4.5")

    _chat(page, "Build a todo app with a list and an input box.")
    _chat(page, "Add a dark mode toggle and keep the todos in local storage.")
    expect(page.locator("#log .msg.user")).to_have_count(2)
    expect(page.locator("#log .msg.agent")).to_have_count(2)
    assert page.locator("#log .msg.agent .text").first.inner_text().strip()

    _wait_for_usage(page.evaluate("() => sessionStorage.getItem('mk0r.sessionKey')"), records=2)

    # A failed turn gives the prompt back and says why.
    page.route(
        "**/api/chat",
        lambda route: route.fulfill(
            status=502,
            content_type="application/json",
            body='{"code":"agent_unreachable","message":"unreachable","extra":{"retryable":true}}',
        ),
    )
    page.get_by_label("Message to the agent").fill("This one will not get through")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#alert")).to_have_text("The agent could not be reached. Try again in a moment.")
    expect(page.get_by_label("Message to the agent")).to_have_value("This one will not get through")
    page.unroute("**/api/chat")

    # A model outside the plan is locked: choosing it (force: Playwright waits for aria-disabled
    # controls to be enabled) is a readable refusal and the picker stays on the current model.
    page.locator("input[name=model][value='sonnet[1m]']").click(force=True)
    expect(page.locator("#alert")).to_contain_text("Your plan does not include this model.")
    expect(page.locator("input[name=model][value=haiku]")).to_be_checked()

    # Picking "Fast" asks for a quote and shows it before anything changes.
    page.locator("input[name=model][value=sonnet]").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading")).to_have_text("Switch from Scary to Fast?")
    expect(dialog).to_contain_text("Switch tax")
    expect(dialog).to_contain_text("First-token delay")
    expect(dialog).to_contain_text("Break-even")
    assert "$" in dialog.locator("#quote-details").inner_text()
    expect(page.locator("#current-model")).to_have_text("Scary")
    page.screenshot(path=str(SCREENSHOTS / "picker-quote.png"))

    dialog.get_by_role("button", name="Confirm switch").click()
    # The usage of the last turn reaches the service asynchronously (the bridge's relay); when it
    # lands between quote and confirm, the quote goes stale and the dialog shows the fresh one.
    page.wait_for_function(
        "() => !document.getElementById('quote-dialog').open || !document.getElementById('quote-notice').hidden",
    )
    if dialog.is_visible():
        expect(page.locator("#quote-notice")).to_contain_text("The price changed since the quote was made")
        expect(dialog).to_contain_text("Switch tax")
        dialog.get_by_role("button", name="Confirm switch").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#status")).to_have_text("Switched to Fast (sonnet).")
    expect(page.locator("#current-model")).to_have_text("Fast")
    expect(page.locator("input[name=model][value=sonnet]")).to_be_checked()

    history = page.locator("#history tbody tr")
    expect(history).to_have_count(1)
    row = history.first.inner_text()
    assert "Scary (haiku)" in row and "Fast (sonnet)" in row and "applied" in row
    assert "$" in row

    page.screenshot(path=str(SCREENSHOTS / "picker.png"), full_page=True)
    assert not console_errors, console_errors

    from billing.models import SwitchRecord
    from sessions_app.models import AgentSession

    with database():
        session = AgentSession.objects.get(user__username="picker-pro")
        record = SwitchRecord.objects.get(session_id=session.pk)
    assert session.model_id == "sonnet"
    assert record.confirmed and record.outcome == "applied"


SCRIPTED_AGENT = Path(__file__).resolve().parent.parent / "vm_bridge" / "fake_agents" / "scripted_agent.py"


def test_stop_ends_a_running_turn(browser, live_stack, settings):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    # An agent whose turn "slow 60" takes a minute unless it is cancelled.
    settings.LOCAL_AGENT_CMD = f"{sys.executable} {SCRIPTED_AGENT}"
    with database():
        _user("picker-stop", "pro")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, live_stack.url, "picker-stop")
    page.get_by_role("button", name="New session").click()
    expect(page.locator("#current-model")).to_be_visible()
    stop = page.get_by_role("button", name="Stop")
    expect(stop).to_be_hidden()

    page.get_by_label("Message to the agent").fill("slow 60")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#log .msg.agent .text").last).to_contain_text("thinking slowly")
    started = time.monotonic()
    stop.click()

    expect(page.locator("#status")).to_contain_text("Turn stopped")
    assert time.monotonic() - started < 10
    expect(stop).to_be_hidden()
    expect(page.locator("#alert")).to_be_hidden()
    expect(page.get_by_role("button", name="Send")).to_be_enabled()
