"""What a quote reads right after a turn, on the whole local stack (vm_bridge, the reference
agent, the emulator, the usage relay posting back to the live service).

The relay delivers a turn's exact usage a moment after the turn ended; these tests hold the
usage endpoint shut (503, which the relay retries) to make that moment as long as they need.
"""

import pytest
from rest_framework.response import Response

from billing.catalog.cost_engine import Usage
from billing.models import SessionCacheState, UsageEvent
from billing.quotes.cache_store import cache_state_snapshot
from billing.quotes.cache_tracker import CacheTracker
from sessions_app.internal_views import UsageIngestView
from sessions_app.models import AgentSession
from tests.conftest import client_for

from .api import chat_turn, wait_for


@pytest.fixture
def relay_gate(monkeypatch):
    """While `closed`, the usage endpoint answers 503 and the bridge keeps the batch spooled."""

    class Gate:
        closed = True

    original = UsageIngestView.post

    def post(self, request):
        if Gate.closed:
            return Response({"code": "unavailable", "message": "held by the test", "extra": {}}, status=503)
        return original(self, request)

    monkeypatch.setattr(UsageIngestView, "post", post)
    return Gate


def _quote(client, key, model_id="sonnet"):
    response = client.post("/api/chat/model/quote", {"sessionKey": key, "modelId": model_id}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()["quote"]


def _exact_replay(key):
    """The cache state the session's stored usage events alone give."""
    tracker = CacheTracker(ttl_policy=SessionCacheState.objects.get(session_key=key).ttl_policy)
    for event in UsageEvent.objects.filter(session_key=key, is_sidechain=False).order_by("occurred_at"):
        usage = Usage(
            input_tokens=event.input_tokens,
            cache_write_5m_tokens=event.cache_write_5m_tokens,
            cache_write_1h_tokens=event.cache_write_1h_tokens,
            cache_read_tokens=event.cache_read_tokens,
            output_tokens=event.output_tokens,
        )
        tracker.record(model=event.model, usage=usage, at=event.occurred_at)
    return tracker.snapshot()


@pytest.mark.django_db(transaction=True)
def test_a_quote_right_after_done_sees_the_turn_and_the_relay_replaces_it_exactly(
    pro_client,
    local_stack,
    asgi_live_server,
    relay_gate,
):
    key = pro_client.post("/api/chat/sessions", format="json").json()["sessionKey"]
    assert "first_turn_free" in _quote(pro_client, key)["warnings"]

    turns = []
    for prompt in ("Build a todo app " + "with a long spec " * 1800, "Add dark mode"):
        done = chat_turn(asgi_live_server.url, pro_client, key, prompt)[-1]
        assert done[0] == "done"
        turns.append(done[1]["usage"])
        # The relay has delivered nothing: the quote sees the turn the client has just seen end.
        assert not UsageEvent.objects.filter(session_key=key).exists()
        quote = _quote(pro_client, key)
        assert quote["prefixTokens"]["from"] == done[1]["usage"]["totalTokens"]
        assert quote["cacheState"]["from"] == "warm"
        assert "first_turn_free" not in quote["warnings"]
    # Two turns, neither relayed: the second one's cache reads what the first wrote.
    assert turns[1]["cachedReadTokens"] > 4096

    relay_gate.closed = False
    # The exact usage supersedes the provisional turn (waited for as a whole: on in-memory SQLite
    # the live server shares the test's connection, which sees a batch's rows before it is done).
    wait_for(
        lambda: (
            UsageEvent.objects.filter(session_key=key).count() == 2
            and SessionCacheState.objects.get(session_key=key).provisional_turn is None
        )
    )
    # Nothing was counted twice: the state is what the exact usage alone gives.
    assert cache_state_snapshot(session_key=key) == _exact_replay(key)
    after = _quote(pro_client, key)
    assert after["prefixTokens"] == quote["prefixTokens"] and after["nextTurn"] == quote["nextTurn"]
    pro_client.delete(f"/api/chat/sessions/{key}")


@pytest.mark.django_db(transaction=True)
def test_the_session_picker_and_quote_show_the_ttl_the_agent_writes_with(
    db,
    local_stack,
    asgi_live_server,
):
    # A flat-rate user: the plan's default is 1 hour; the reference agent writes 5-minute entries.
    client = client_for("oauth-max", "max5", billing="oauth")
    key = client.post("/api/chat/sessions", format="json").json()["sessionKey"]
    assert client.get(f"/api/chat/sessions/{key}").json()["cacheTtl"] == "1h"
    assert _quote(client, key)["ttl"] == "1h"  # before the first write: the plan's default

    chat_turn(asgi_live_server.url, client, key, "Build a notes app " + "with a wide spec " * 1800)
    # Until the batch is in whole (as above), which the session's TTL is the last part of.
    wait_for(lambda: AgentSession.objects.get(key=key).cache_ttl == "5m")
    event = UsageEvent.objects.get(session_key=key)
    assert event.cache_write_5m_tokens > 0 and event.cache_write_1h_tokens == 0

    assert client.get(f"/api/chat/sessions/{key}").json()["cacheTtl"] == "5m"
    (listed,) = client.get("/api/chat/sessions").json()["sessions"]
    assert listed["cacheTtl"] == "5m"  # what the picker shows as "cache lifetime"
    assert _quote(client, key)["ttl"] == "5m"
    client.delete(f"/api/chat/sessions/{key}")
