"""Chat turns on the ASGI server: a client can stop its turn, a client that goes away has its
turn cancelled, and the synchronous views run side by side. (More turns at once than the
threaded server had threads: test_serve.py, on the production server itself.)"""

import threading
import time

import httpx
import pytest
from django.db import connection

from .api import chat_turn, http_api, sse_events, wait_for

pytestmark = pytest.mark.django_db
# Requests side by side need a database server: the in-memory SQLite test database is one
# connection, which the test server's views take in turn.
concurrent = pytest.mark.skipif(
    connection.vendor == "sqlite", reason="requests side by side need PostgreSQL (set DATABASE_URL)"
)


def test_cancel_on_an_idle_session_is_a_no_op(pro_client, bridge):
    key = pro_client.post("/api/chat/sessions", format="json").json()["sessionKey"]

    response = pro_client.post("/api/chat/cancel", {"sessionKey": key}, format="json")

    assert response.status_code == 200 and response.json() == {"ok": True}
    assert bridge.paths()[-1] == "/session/cancel"


def test_cancel_of_another_users_session_is_404(pro_client, max20_client, bridge):
    key = pro_client.post("/api/chat/sessions", format="json").json()["sessionKey"]
    calls = len(bridge.calls)

    response = max20_client.post("/api/chat/cancel", {"sessionKey": key}, format="json")

    assert response.status_code == 404 and response.json()["code"] == "session_not_found"
    assert len(bridge.calls) == calls  # nothing reached the agent


def test_cancel_of_a_closed_session_is_a_no_op(pro_client, bridge):
    key = pro_client.post("/api/chat/sessions", format="json").json()["sessionKey"]
    pro_client.delete(f"/api/chat/sessions/{key}")

    response = pro_client.post("/api/chat/cancel", {"sessionKey": key}, format="json")

    assert response.status_code == 200
    assert "/session/cancel" not in bridge.paths()


def test_cancel_needs_a_session_key(pro_client, bridge):
    response = pro_client.post("/api/chat/cancel", {}, format="json")

    assert response.status_code == 400 and response.json()["code"] == "invalid_request"


@pytest.mark.django_db(transaction=True)
def test_stop_ends_the_running_turn_with_done_cancelled(pro_client, bridge, asgi_live_server):
    bridge.turn_events, bridge.turn_interval = 600, 0.05  # a 30 s turn
    api = http_api(asgi_live_server.url, pro_client, timeout=10)
    key = api.post("/api/chat/sessions").json()["sessionKey"]

    started = time.monotonic()
    with api.stream("POST", "/api/chat", json={"sessionKey": key, "prompt": "go"}) as response:
        assert response.status_code == 200 and response.headers["content-type"] == "text/event-stream"
        lines = response.iter_lines()
        assert next(lines) == "event: update"
        stopped = api.post("/api/chat/cancel", json={"sessionKey": key})
        assert stopped.status_code == 200
        events = sse_events(lines)

    assert time.monotonic() - started < 5
    assert events[-1] == ("done", {"stopReason": "cancelled", "usage": events[-1][1]["usage"], "turn": 1})
    assert events[-1][1]["usage"]["totalTokens"] == 15


@pytest.mark.django_db(transaction=True)
def test_a_client_gone_mid_turn_has_its_turn_cancelled(pro_client, bridge, asgi_live_server):
    bridge.turn_events, bridge.turn_interval = 600, 0.05
    api = http_api(asgi_live_server.url, pro_client, timeout=10)
    key = api.post("/api/chat/sessions").json()["sessionKey"]
    session_id = api.get(f"/api/chat/sessions/{key}").json()["sessionId"]

    with api.stream("POST", "/api/chat", json={"sessionKey": key, "prompt": "go"}) as response:
        assert next(response.iter_lines()) == "event: update"
    gone = time.monotonic()  # the connection is closed here

    wait_for(lambda: session_id in bridge.cancelled, timeout=2.0)
    assert time.monotonic() - gone < 2.0


@pytest.mark.django_db(transaction=True)
def test_a_client_gone_before_the_first_event_has_its_turn_cancelled(pro_client, bridge, asgi_live_server):
    bridge.delay = 1.0  # the agent's first event is a while coming
    api = http_api(asgi_live_server.url, pro_client, timeout=10)
    key = api.post("/api/chat/sessions").json()["sessionKey"]
    session_id = api.get(f"/api/chat/sessions/{key}").json()["sessionId"]
    bridge.calls.clear()

    with pytest.raises(httpx.ReadTimeout):
        api.post("/api/chat", json={"sessionKey": key, "prompt": "go"}, timeout=0.3)

    cancels = lambda: [body for path, body, _ in bridge.calls if path == "/session/cancel"]  # noqa: E731
    wait_for(cancels, timeout=3.0)
    assert cancels() == [{"sessionId": session_id}]


@pytest.mark.django_db(transaction=True)
def test_a_bridge_silent_mid_turn_past_the_read_timeout_ends_the_turn_with_agent_timeout(
    pro_client, bridge, asgi_live_server, settings
):
    settings.BRIDGE_PROMPT_TIMEOUT = 0.5
    bridge.turn_events, bridge.turn_interval = 2, 5.0  # one update, then 5 s without a byte
    key = pro_client.post("/api/chat/sessions", format="json").json()["sessionKey"]
    session_id = pro_client.get(f"/api/chat/sessions/{key}").json()["sessionId"]

    events = chat_turn(asgi_live_server.url, pro_client, key, "go")

    assert [name for name, _ in events] == ["update", "error"]
    assert events[-1][1]["code"] == "agent_timeout"
    wait_for(lambda: session_id in bridge.cancelled, timeout=2.0)  # and the agent is told to stop


@concurrent
@pytest.mark.django_db(transaction=True)
def test_slow_synchronous_views_do_not_wait_for_each_other(pro_client, bridge, asgi_live_server):
    """The synchronous views run on the view threads, side by side: four switches whose agent
    takes 1 s each finish together."""
    api = http_api(asgi_live_server.url, pro_client, timeout=10)
    keys = [api.post("/api/chat/sessions").json()["sessionKey"] for _ in range(4)]
    bridge.delay = 1.0
    answers: list[int] = []

    def switch(key: str) -> None:
        with httpx.Client(base_url=api.base_url, headers=api.headers, timeout=10) as own:
            answers.append(own.post("/api/chat/model", json={"sessionKey": key, "modelId": "sonnet"}).status_code)

    started = time.monotonic()
    threads = [threading.Thread(target=switch, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert answers == [200] * 4
    assert time.monotonic() - started < 2.5  # one after another: over 4 s
