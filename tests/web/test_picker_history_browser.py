"""The picker keeps the conversation: a session's turns are shown again after a reload, when the
session is chosen again and after a resume, earlier ones on request; and the session panel shows
what the session has cost so far and its cache hit rate, updated after each turn.

Same stack as test_picker_browser (live service, local sandboxes, headless Debian chromium).
"""

import re
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.web import test_picker_browser as picker_browser
from tests.web.test_picker_browser import SCREENSHOTS, TIMEOUT_MS, _chat, _user, database, sign_in

browser = picker_browser.browser
live_stack = picker_browser.live_stack

pytestmark = [pytest.mark.timeout(180)]

SPEND = re.compile(r"^Cost so far (\$[\d,.]+) · cache hit rate (–|\d+\.\d%)$")
NOTE = re.compile(r"^Done · \$\d+\.\d{4}$")  # billed: no "(provisional)" any more
# Long enough for Haiku 4.5 to cache (from 4,096 tokens), so that the next turn reads it.
LONG_PROMPT = "Build a recipe app " + "with a detailed brief " * 1400


def _spend_once_billed(page, *, not_this: str) -> tuple[Decimal, str]:
    """The running cost and hit rate, once they changed from `not_this` and every turn's usage is
    billed."""
    page.wait_for_function(
        """(previous) => {
            const spend = document.getElementById('session-spend');
            return !spend.hidden && spend.textContent !== previous && !spend.textContent.includes('not billed');
        }""",
        arg=not_this,
        timeout=TIMEOUT_MS,
    )
    text = page.locator("#session-spend").inner_text()
    found = SPEND.match(text)
    assert found, text
    return Decimal(found.group(1).lstrip("$").replace(",", "")), found.group(2)


def _conversation(page) -> list[tuple[str, str]]:
    return [
        (item.get_attribute("class"), item.locator(".text").inner_text()) for item in page.locator("#log .msg").all()
    ]


def test_the_conversation_and_the_running_cost_stay_with_the_session(browser, live_stack):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    with database():
        _user("picker-history", "pro")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = sign_in(page, live_stack.url, "picker-history")
    page.get_by_role("button", name="New session").click()
    expect(page.locator("#session-spend")).to_have_text("Cost so far $0.00 · cache hit rate –")
    key = page.evaluate("() => sessionStorage.getItem('mk0r.sessionKey')")

    # Each turn moves the running cost once its usage is billed; the second one reads the cache.
    spend = page.locator("#session-spend")
    before = spend.inner_text()
    _chat(page, LONG_PROMPT)
    first_cost, first_rate = _spend_once_billed(page, not_this=before)
    assert first_cost > 0
    before = spend.inner_text()
    _chat(page, "Add a dark mode toggle.")
    second_cost, second_rate = _spend_once_billed(page, not_this=before)
    assert second_cost > first_cost
    assert (first_rate, second_rate[-1]) == ("–", "%") and float(second_rate[:-1]) > 50
    notes = page.locator("#log .msg.agent .turn-note")
    expect(notes).to_have_count(2)
    for note in notes.all():
        expect(note).to_have_text(NOTE)
    said = _conversation(page)
    assert [role for role, _ in said] == ["msg user", "msg agent"] * 2 and said[3][1].strip()
    page.screenshot(path=str(SCREENSHOTS / "picker-history.png"), full_page=True)

    # A reload shows the same conversation, from the stored turns, and the same running cost.
    page.reload()
    expect(page.locator("#log .msg")).to_have_count(4)
    assert _conversation(page) == said
    expect(page.locator("#log .msg.agent .turn-note").first).to_have_text(NOTE)
    expect(page.locator("#session-spend")).to_contain_text(f"${second_cost}")

    # Another session starts empty; choosing the first one again brings its conversation back.
    page.get_by_role("button", name="New session").click()
    expect(page.locator("#status")).to_contain_text("Session started")
    expect(page.locator("#log .msg")).to_have_count(0)
    expect(page.locator("#session-spend")).to_have_text("Cost so far $0.00 · cache hit rate –")
    other = page.evaluate("() => sessionStorage.getItem('mk0r.sessionKey')")
    page.locator("#session-select").select_option(key)
    expect(page.locator("#log .msg")).to_have_count(4)
    assert _conversation(page) == said

    # After a resume too.
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#status")).to_have_text("The agent still has this session: nothing to resume.")
    expect(page.locator("#log .msg")).to_have_count(4)
    assert _conversation(page) == said

    # A long conversation opens on its latest turns; earlier ones come on request, above them.
    from sessions_app.models import AgentSession, ChatTurn

    with database():
        session = AgentSession.objects.get(key=other)
        now = timezone.now()
        ChatTurn.objects.bulk_create(
            ChatTurn(
                session=session, acp_session_id=session.acp_session_id, number=n, model_id="haiku",
                prompt=f"prompt {n}", text=f"answer {n}", stop_reason="end_turn", started_at=now, ended_at=now,
            )
            for n in range(1, 24)
        )  # fmt: skip
    page.locator("#session-select").select_option(other)
    expect(page.locator("#log .msg.user")).to_have_count(20)
    expect(page.locator("#log .msg.user").first).to_have_text(re.compile("prompt 4$"))
    expect(page.locator("#log .msg.agent .turn-note").last).to_have_text("Done · cost not known yet")
    page.get_by_role("button", name="Show earlier turns").click()
    expect(page.locator("#log .msg.user")).to_have_count(23)
    expect(page.locator("#log .msg.user").first).to_have_text(re.compile("prompt 1$"))
    expect(page.get_by_role("button", name="Show earlier turns")).to_be_hidden()

    # Whoever signs in next sees none of it.
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#log .msg")).to_have_count(0)
    expect(page.locator("#session-spend")).to_be_hidden()
    assert not errors, errors
