"""The sessions API as the tests call it again and again: a session started, a turn's events
read off the wire, and a wait for what happens in the background."""

import json
import time

import httpx


def session_start(client) -> dict:
    """A new session of the client's user (201), as the API answers it."""
    response = client.post("/api/chat/sessions", format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def http_api(base_url: str, client, *, timeout: float = 30) -> httpx.Client:
    """The test client's user calling a real server over HTTP, with the same token."""
    return httpx.Client(
        base_url=base_url, headers={"Authorization": client._credentials["HTTP_AUTHORIZATION"]}, timeout=timeout
    )


def sse_events(lines) -> list[tuple[str, dict]]:
    """A server-sent event stream's lines as (event, data) pairs."""
    events, name = [], None
    for line in lines:
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[6:])))
    return events


def chat_turn(base_url: str, client, key: str, prompt: str) -> list[tuple[str, dict]]:
    """One turn, streamed by the server at `base_url` as a browser reads it."""
    with (
        http_api(base_url, client) as api,
        api.stream("POST", "/api/chat", json={"sessionKey": key, "prompt": prompt}) as response,
    ):
        assert response.status_code == 200 and response.headers["Content-Type"] == "text/event-stream"
        return sse_events(response.iter_lines())


def wait_for(condition, *, timeout: float = 15.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
