"""The chat relay records the end of a turn as the `done` event passes, before the client has it."""

import pytest
from django.contrib.auth import get_user_model
from django.db import DatabaseError
from django.utils import timezone

from billing.quotes.cache_store import cache_state_snapshot
from sessions_app import services, turns
from sessions_app.bridge_client import BridgeClient, StreamEvent
from sessions_app.models import AgentSession

pytestmark = pytest.mark.django_db
USAGE = {"inputTokens": 3, "outputTokens": 200, "cachedReadTokens": 60_000, "cachedWriteTokens": 1_800}


@pytest.fixture
def session():
    user = get_user_model().objects.create(username="relay-user")
    return AgentSession.objects.create(user=user, provider="static", model_id="haiku", status="ready")


def _relay(session, events):
    """The relay as a WSGI request's thread reads it: the turn on the turn loop, its database
    writes on this thread (the test's transaction)."""

    async def rest():
        for event in events[1:]:
            yield event

    target = services.TurnTarget(bridge=BridgeClient(base_url="http://127.0.0.1:9", token="t"), session=session)
    watch = services.TurnWatch(session=session, started=timezone.now())
    request_thread = turns._RequestThread()
    relay = turns._relay(target, events[0], rest(), watch=watch, run_sync=request_thread.run)
    return turns._blocking_iter(relay, turns._loop_for_wsgi(), request_thread)


def test_done_records_the_turn_before_the_client_gets_it(session):
    events = [
        StreamEvent("update", {"update": {"sessionUpdate": "agent_message_chunk"}}),
        # Three requests in the turn (ACP sums them); the conversation is now 22,000 tokens.
        StreamEvent("update", {"update": {"sessionUpdate": "usage_update", "used": 22_000, "size": 200_000}}),
        StreamEvent("done", {"stopReason": "end_turn", "usage": USAGE}),
    ]
    seen_at_done = [
        # The client is about to see the turn end: a quote made now must see it.
        cache_state_snapshot(session_key=str(session.key))
        for event in _relay(session, events)
        if event.event == "done"
    ]
    assert [(s.current_model, s.context_tokens) for s in seen_at_done] == [("claude-haiku-4-5", 22_000)]


def test_a_failure_to_record_does_not_cost_the_client_its_turn(session, monkeypatch):
    def fail(**kwargs):
        raise DatabaseError("the database is away")

    monkeypatch.setattr(services, "cache_state_turn_ended", fail)
    events = [StreamEvent("done", {"stopReason": "end_turn", "usage": USAGE})]
    assert [e.event for e in _relay(session, events)] == ["done"]


def test_a_turn_that_failed_records_nothing(session):
    events = [StreamEvent("error", {"code": "agent_error", "message": "boom"})]
    assert [e.event for e in _relay(session, events)] == ["error"]
    assert cache_state_snapshot(session_key=str(session.key)).last_request_at is None


def test_a_failure_to_reach_a_thread_for_the_record_does_not_cost_the_client_its_turn(session, monkeypatch):
    def fail(**kwargs):
        raise RuntimeError("no thread to run on")

    monkeypatch.setattr(turns, "session_turn_ended", fail)
    events = [StreamEvent("done", {"stopReason": "end_turn", "usage": USAGE})]
    assert [e.event for e in _relay(session, events)] == ["done"]
