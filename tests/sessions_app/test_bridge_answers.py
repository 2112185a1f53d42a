"""A bridge whose answers do not keep to the contract (it runs in the user's sandbox): a clear
API error, or the answer's good parts, and never a 500."""

import asyncio
import contextlib
import gc
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from billing.models import SwitchRecord
from sessions_app.bridge_client import BridgeClient, BridgeError, BridgeErrorKind, StreamEvent
from sessions_app.models import AgentSession, SessionStatus

from .api import session_start

pytestmark = pytest.mark.django_db


def test_an_error_whose_message_is_not_text_fails_the_switch_cleanly(pro_client, bridge):
    key = session_start(pro_client)["sessionKey"]
    bridge.answer(502, {"code": "agent_error", "message": {"not": "text"}, "extra": {}})

    response = pro_client.post("/api/chat/model", {"sessionKey": key, "modelId": "sonnet"}, format="json")

    assert response.status_code == 502 and response.json()["code"] == "agent_error"
    record = SwitchRecord.objects.get(session__key=key)
    assert (record.outcome, record.error_code) == ("failed", "agent_error")
    assert record.error_message == "Bridge answered 502."
    assert AgentSession.objects.get(key=key).lease_token is None


def test_a_session_start_refused_with_a_message_that_is_not_text_marks_the_session_failed(pro_client, bridge):
    bridge.answer(502, {"code": "agent_error", "message": ["not", "text"], "extra": {}})

    response = pro_client.post("/api/chat/sessions", format="json")

    assert response.status_code == 502 and response.json()["code"] == "agent_error"
    session = AgentSession.objects.get()
    assert (session.status, session.last_error) == (SessionStatus.FAILED, "Bridge answered 502.")


def test_an_answer_that_is_not_an_object_is_an_agent_error(pro_client, bridge):
    key = session_start(pro_client)["sessionKey"]
    bridge.answer(200, ["not", "an", "object"])

    response = pro_client.post(f"/api/chat/sessions/{key}/resume", format="json")

    assert response.status_code == 502 and response.json()["code"] == "agent_error"
    assert AgentSession.objects.get(key=key).lease_token is None


def test_offered_models_that_are_not_models_are_left_out(pro_client, bridge):
    offer = [{"modelId": "haiku", "name": "Haiku", "description": ""}, "sonnet", 3, {"name": "no id"}]
    bridge.answer(200, {"sessionId": "acp-odd", "modelId": "haiku", "availableModels": offer})

    session = session_start(pro_client)

    assert [m["modelId"] for m in session["availableModels"]] == ["haiku"]
    detail = pro_client.get(f"/api/chat/sessions/{session['sessionKey']}")
    assert [m["modelId"] for m in detail.json()["availableModels"]] == ["haiku"]


def test_a_session_start_answered_without_a_session_id_fails_the_session(pro_client, bridge):
    bridge.answer(200, {"sessionId": {"id": 1}, "modelId": "haiku", "availableModels": []})

    response = pro_client.post("/api/chat/sessions", format="json")

    assert response.status_code == 502 and response.json()["code"] == "agent_error"
    assert AgentSession.objects.get().status == SessionStatus.FAILED


def test_a_state_with_fields_of_the_wrong_type_still_checks_the_model(pro_client, bridge):
    session = session_start(pro_client)
    AgentSession.objects.filter(key=session["sessionKey"]).update(model_unverified=True)
    bridge.answer(
        200,
        {
            "sessionId": session["sessionId"],
            "modelId": "haiku",
            "switchPending": ["sonnet"],
            "lastSwitch": "applied",
            "availableModels": "all of them",
        },
    )

    response = pro_client.post(
        "/api/chat/model/quote", {"sessionKey": session["sessionKey"], "modelId": "sonnet"}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert AgentSession.objects.get(key=session["sessionKey"]).model_unverified is False


class _Bridge(BaseHTTPRequestHandler):
    """A bridge of a test's own: it logs nothing, and reads each request whole before answering."""

    def log_message(self, *args):
        pass

    def request_read(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def stream_start(self) -> None:
        """Read the request and start a turn's stream (its headers are left open)."""
        self.request_read()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")


@contextlib.contextmanager
def _served(handler: type[_Bridge]) -> Iterator[str]:
    """The address of a bridge that answers with `handler`, on a port of its own."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def _bridge(handler: type[_Bridge]) -> Iterator[BridgeClient]:
    """A client of a bridge that answers with `handler`."""
    with _served(handler) as url:
        yield BridgeClient(base_url=url, token="t")


class _BrokenGzip(_Bridge):
    """Says its answer is gzip-compressed, and it is not."""

    def do_POST(self):
        self.request_read()
        body = b"this is not gzip"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def broken_gzip_bridge(settings, tmp_path):
    with _served(_BrokenGzip) as url:
        settings.SANDBOX_PROVIDER = "static"
        settings.BRIDGE_STATIC_URL = url
        settings.BRIDGE_STATIC_TOKEN = "t"
        settings.LOCAL_SANDBOX_ROOT = tmp_path
        yield


def test_an_answer_that_cannot_be_decoded_is_an_agent_error(pro_client, broken_gzip_bridge):
    response = pro_client.post("/api/chat/sessions", format="json")

    assert response.status_code == 502 and response.json()["code"] == "agent_error"
    assert AgentSession.objects.get().status == SessionStatus.FAILED


class _BrokenStream(_Bridge):
    """A turn's stream that breaks: compressed, it says, and it is not (`gzip`); or one event,
    then the connection closes in the middle of the chunked body (`cut short`)."""

    protocol_version = "HTTP/1.1"
    broken = "gzip"

    def do_POST(self):
        self.stream_start()
        if self.broken == "gzip":
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", "16")
            self.end_headers()
            self.wfile.write(b"this is not gzip")
        else:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            event = b'event: update\ndata: {"n": 1}\n\n'
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
        self.close_connection = True


@pytest.mark.parametrize(
    ("broken", "kind", "events"),
    [("gzip", BridgeErrorKind.OTHER, []), ("cut short", BridgeErrorKind.UNREACHABLE, ["update"])],
)
def test_a_turn_stream_that_breaks_is_the_bridge_error_of_any_answer_broken_so(broken, kind, events, monkeypatch):
    monkeypatch.setattr(_BrokenStream, "broken", broken)
    seen = []

    async def turn(client: BridgeClient) -> None:
        async for event in client.aprompt(session_id="s", prompt="go"):
            seen.append(event.event)

    with _bridge(_BrokenStream) as client, pytest.raises(BridgeError) as raised:
        asyncio.run(turn(client))
    assert raised.value.kind == kind and seen == events


class _PausedStream(_Bridge):
    """A turn that streams two events, then waits until the test lets it end."""

    release = threading.Event()  # each test gives it an event of its own

    def do_POST(self):
        self.stream_start()
        self.end_headers()
        self.wfile.write(b'event: update\ndata: {"n": 1}\n\nevent: update\ndata: {"n": 2}\n\n')
        self.wfile.flush()
        self.release.wait(timeout=10)
        self.wfile.write(b'event: done\ndata: {"stopReason": "end_turn"}\n\n')
        self.close_connection = True


def test_a_turn_stream_keeps_no_event_while_it_waits_for_the_next(monkeypatch):
    monkeypatch.setattr(_PausedStream, "release", threading.Event())

    async def turn(client: BridgeClient) -> tuple[list[str], int, str]:
        events = client.aprompt(session_id="s", prompt="go")
        seen = [(await anext(events)).event for _ in range(2)]
        waiting = asyncio.create_task(anext(events))
        await asyncio.sleep(0.05)  # the stream now waits for the bridge's third event
        gc.collect()  # what other tests left
        alive = sum(type(o) is StreamEvent for o in gc.get_objects())
        _PausedStream.release.set()
        last = (await waiting).event
        await events.aclose()
        return seen, alive, last

    with _bridge(_PausedStream) as client:
        seen, alive, last = asyncio.run(turn(client))
    assert (seen, alive, last) == (["update", "update"], 0, "done")
