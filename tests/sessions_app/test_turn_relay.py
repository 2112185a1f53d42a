"""The chat relay records the end of a turn as its `done` (or `error`) passes, before the client has
it: in the session's cache state, and as a stored turn."""

import asyncio
import gc

import pytest
from django.contrib.auth import get_user_model
from django.db import DatabaseError
from django.utils import timezone

from billing.quotes.cache_store import cache_state_snapshot
from sessions_app import services, turn_relay
from sessions_app.bridge_client import BridgeClient, SseParser, StreamEvent
from sessions_app.models import AgentSession, ChatTurn
from sessions_app.turn_text import TURN_TEXT_BYTES

from .test_turn_text import needs_proc, turn_files_open

pytestmark = pytest.mark.django_db
USAGE = {"inputTokens": 3, "outputTokens": 200, "cachedReadTokens": 60_000, "cachedWriteTokens": 1_800}


@pytest.fixture
def session():
    user = get_user_model().objects.create(username="relay-user")
    return AgentSession.objects.create(
        user=user, provider="static", model_id="haiku", status="ready", acp_session_id="acp-1"
    )


def _relay(session, events):
    """The relay as a WSGI request's thread reads it: the turn on the turn loop, its database
    writes on this thread (the test's transaction); its frames read back as events."""

    async def rest():
        for event in events[1:]:
            yield event

    return _events(_frames(session, events[0], rest()))


def _frames(session, first, rest):
    target = services.TurnTarget(bridge=BridgeClient(base_url="http://127.0.0.1:9", token="t"), session=session)
    watch = services.TurnWatch(session=session, started=timezone.now(), prompt="the prompt")
    request_thread = turn_relay._RequestThread()
    relay = turn_relay._relay(target, first, rest, watch=watch, run_sync=request_thread.run)
    return turn_relay._BlockingFrames(relay, turn_relay._loop_for_wsgi(), request_thread)


def _events(frames):
    for frame in frames:
        yield from SseParser().feed(frame)


class _Probe(StreamEvent):
    """An event of this test alone, to count."""


def _probes_alive() -> int:
    return sum(type(o) is _Probe for o in gc.get_objects())


def test_an_open_turn_keeps_no_event_while_it_waits_for_the_next(session):
    alive_while_waiting = []

    async def rest():
        yield _Probe("update", {"update": {"sessionUpdate": "agent_message_chunk"}})
        # The relay has passed two events on and waits for the bridge's next one.
        alive_while_waiting.append(_probes_alive())
        yield _Probe("done", {"stopReason": "end_turn", "usage": USAGE})

    frames = list(_frames(session, _Probe("update", {"update": {"sessionUpdate": "usage_update"}}), rest()))
    assert len(frames) == 3 and frames[-1].startswith(b"event: done\n")
    assert alive_while_waiting == [0]


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


def _no_thread(**kwargs):
    raise RuntimeError("no thread to run on")


def test_a_failure_to_reach_a_thread_for_the_record_does_not_cost_the_client_its_turn(session, monkeypatch):
    monkeypatch.setattr(turn_relay, "session_turn_ended", _no_thread)
    events = [StreamEvent("done", {"stopReason": "end_turn", "usage": USAGE})]
    assert [e.event for e in _relay(session, events)] == ["done"]


@needs_proc
def test_the_turns_text_file_is_closed_even_when_its_record_fails(session, monkeypatch):
    monkeypatch.setattr(turn_relay, "session_turn_ended", _no_thread)
    files_open = turn_files_open()
    events = [_chunk("Hello" * 500), StreamEvent("done", {"stopReason": "end_turn", "usage": USAGE})]
    assert [e.event for e in _relay(session, events)] == ["update", "done"]
    assert turn_files_open() == files_open


def _chunk(text: str, turn: int = 4) -> StreamEvent:
    update = {"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": text}}
    return StreamEvent("update", {"sessionId": "acp-1", "update": update, "turn": turn})


def test_a_turn_that_failed_is_stored_with_its_error_and_what_was_said(session):
    events = [_chunk("Half an "), _chunk("answer"), StreamEvent("error", {"code": "agent_timeout", "message": "slow"})]

    assert [e.event for e in _relay(session, events)] == ["update", "update", "error"]

    turn = ChatTurn.objects.get(session=session)
    assert (turn.prompt, turn.text, turn.number, turn.acp_session_id) == ("the prompt", "Half an answer", 4, "acp-1")
    assert (turn.stop_reason, turn.error_code, turn.usage, turn.provisional_cost_usd) == (
        "error",
        "agent_timeout",
        None,
        None,
    )


def test_a_stream_that_broke_off_is_stored_as_failed(session):
    assert [e.event for e in _relay(session, [_chunk("So far")])] == ["update", "error"]

    turn = ChatTurn.objects.get(session=session)
    assert (turn.text, turn.stop_reason, turn.error_code) == ("So far", "error", "agent_error")


def test_the_agents_text_is_kept_up_to_its_limit(session):
    limit = TURN_TEXT_BYTES
    # Two-byte characters across the limit: the stored text ends on a whole one.
    events = [_chunk("a" * (limit - 3)), _chunk("éé"), _chunk("more"), StreamEvent("done", {"stopReason": "end_turn"})]

    assert [e.event for e in _relay(session, events)][-1] == "done"

    turn = ChatTurn.objects.get(session=session)
    assert turn.text == "a" * (limit - 3) + "é" and turn.text_truncated
    assert turn.stop_reason == "end_turn" and turn.usage is None


def test_a_failure_to_store_the_turn_keeps_the_cache_state_and_the_stream(session, monkeypatch):
    def fail(**kwargs):
        raise DatabaseError("the database is away")

    monkeypatch.setattr(ChatTurn.objects, "create", fail)
    events = [_chunk("Hello"), StreamEvent("done", {"stopReason": "end_turn", "usage": USAGE, "turn": 4})]

    assert [e.event for e in _relay(session, events)] == ["update", "done"]
    assert cache_state_snapshot(session_key=str(session.key)).current_model == "claude-haiku-4-5"


class _WorkingBridge:
    """A bridge whose turn sends one event, then goes on until its stream is closed; it notes
    the stream's closing and the cancel."""

    def __init__(self) -> None:
        self.closed = self.cancelled = False

    async def aprompt(self, *, session_id: str, prompt: str):
        try:
            yield _chunk("0 ", turn=1)
            await asyncio.Event().wait()  # the agent works on
        finally:
            self.closed = True

    async def acancel(self, *, session_id: str) -> None:
        self.cancelled = True


def test_a_turn_whose_response_is_dropped_before_its_first_send_is_cancelled_and_stored(session):
    """The client went away after the agent's first event but before Django sent anything:
    Django drops the response unread and unclosed (its task cancelled outside the stream)."""
    bridge = _WorkingBridge()
    target = services.TurnTarget(bridge=bridge, session=session)
    request_thread = turn_relay._RequestThread()
    recorded = []

    async def run_sync(fn, /, **kwargs):
        result = await request_thread.run(fn, **kwargs)
        recorded.append(fn.__name__)
        return result

    async def start_and_drop() -> None:
        frames = await turn_relay.turn_start(target=target, prompt="never mind", run_sync=run_sync)
        del frames
        while not (bridge.closed and bridge.cancelled and recorded):
            await asyncio.sleep(0.01)

    request_thread.wait(asyncio.wait_for(start_and_drop(), 5), turn_relay._loop_for_wsgi())

    turn = ChatTurn.objects.get(session=session)
    assert (turn.prompt, turn.text, turn.number, turn.stop_reason) == ("never mind", "0 ", 1, "disconnected")


def test_a_call_for_a_request_thread_that_waits_no_more_is_refused_not_left_waiting():
    # What the loop meets when it closes a turn whose WSGI response was dropped unclosed.
    request_thread = turn_relay._RequestThread()
    with pytest.raises(RuntimeError, match="no longer waits"):
        asyncio.run(asyncio.wait_for(request_thread.run(print), 1))
