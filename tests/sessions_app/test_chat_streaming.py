"""Chat turns on the ASGI server: they stream without holding a thread, a client can stop its
turn, and a client that goes away has its turn cancelled."""

import json
import threading
import time

import httpx
import pytest
from django.db import connection

pytestmark = pytest.mark.django_db
# Requests side by side need a database server: the in-memory SQLite test database is one
# connection, which the test server's views take in turn.
concurrent = pytest.mark.skipif(
    connection.vendor == "sqlite", reason="requests side by side need PostgreSQL (set DATABASE_URL)"
)


def _events(lines) -> list[tuple[str, dict]]:
    events, name = [], None
    for line in lines:
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[6:])))
    return events


def _api(server, client) -> httpx.Client:
    token = client._credentials["HTTP_AUTHORIZATION"]
    return httpx.Client(base_url=server.url, headers={"Authorization": token}, timeout=10)


def _wait_for(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


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
    api = _api(asgi_live_server, pro_client)
    key = api.post("/api/chat/sessions").json()["sessionKey"]

    started = time.monotonic()
    with api.stream("POST", "/api/chat", json={"sessionKey": key, "prompt": "go"}) as response:
        assert response.status_code == 200 and response.headers["content-type"] == "text/event-stream"
        lines = response.iter_lines()
        assert next(lines) == "event: update"
        stopped = api.post("/api/chat/cancel", json={"sessionKey": key})
        assert stopped.status_code == 200
        events = _events(lines)

    assert time.monotonic() - started < 5
    assert events[-1] == ("done", {"stopReason": "cancelled", "usage": events[-1][1]["usage"], "turn": 1})
    assert events[-1][1]["usage"]["totalTokens"] == 15


@pytest.mark.django_db(transaction=True)
def test_a_client_gone_mid_turn_has_its_turn_cancelled(pro_client, bridge, asgi_live_server):
    bridge.turn_events, bridge.turn_interval = 600, 0.05
    api = _api(asgi_live_server, pro_client)
    key = api.post("/api/chat/sessions").json()["sessionKey"]
    session_id = api.get(f"/api/chat/sessions/{key}").json()["sessionId"]

    with api.stream("POST", "/api/chat", json={"sessionKey": key, "prompt": "go"}) as response:
        assert next(response.iter_lines()) == "event: update"
    gone = time.monotonic()  # the connection is closed here

    _wait_for(lambda: session_id in bridge.cancelled, timeout=2.0)
    assert time.monotonic() - gone < 2.0


@pytest.mark.django_db(transaction=True)
def test_a_client_gone_before_the_first_event_has_its_turn_cancelled(pro_client, bridge, asgi_live_server):
    bridge.delay = 1.0  # the agent's first event is a while coming
    api = _api(asgi_live_server, pro_client)
    key = api.post("/api/chat/sessions").json()["sessionKey"]
    session_id = api.get(f"/api/chat/sessions/{key}").json()["sessionId"]
    bridge.calls.clear()

    with pytest.raises(httpx.ReadTimeout):
        api.post("/api/chat", json={"sessionKey": key, "prompt": "go"}, timeout=0.3)

    cancels = lambda: [body for path, body, _ in bridge.calls if path == "/session/cancel"]  # noqa: E731
    _wait_for(cancels, timeout=3.0)
    assert cancels() == [{"sessionId": session_id}]


@concurrent
@pytest.mark.django_db(transaction=True)
def test_more_turns_than_the_old_thread_count_while_a_quote_answers(pro_client, bridge, asgi_live_server):
    """100 turns stream at once (the threaded server had 2 x 16 threads), and a quote of another
    session still answers at once."""
    bridge.turn_events, bridge.turn_interval = 120, 0.25  # 30 s turns: all 100 are open at once
    api = _api(asgi_live_server, pro_client)
    keys = [api.post("/api/chat/sessions").json()["sessionKey"] for _ in range(101)]
    first_events: list[float] = []
    ends: list[str] = []

    def turn(key: str) -> None:
        with (
            httpx.Client(base_url=api.base_url, headers=api.headers, timeout=60) as own,
            own.stream("POST", "/api/chat", json={"sessionKey": key, "prompt": "go"}) as response,
        ):
            lines = response.iter_lines()
            assert next(lines) == "event: update"
            first_events.append(time.monotonic())
            ends.append(_events(lines)[-1][0])

    threads = [threading.Thread(target=turn, args=(key,)) for key in keys[:100]]
    for thread in threads:
        thread.start()
    _wait_for(lambda: len(first_events) == 100, timeout=20.0)

    asked = time.monotonic()
    quote = api.post("/api/chat/model/quote", json={"sessionKey": keys[100], "modelId": "sonnet"})
    answered = time.monotonic() - asked

    assert quote.status_code == 200, quote.text
    assert answered < 1.0
    for thread in threads:
        thread.join(timeout=60)
    assert ends == ["done"] * 100


@concurrent
@pytest.mark.django_db(transaction=True)
def test_slow_synchronous_views_do_not_wait_for_each_other(pro_client, bridge, asgi_live_server):
    """The synchronous views run on the view threads, side by side: four switches whose agent
    takes 1 s each finish together."""
    api = _api(asgi_live_server, pro_client)
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
