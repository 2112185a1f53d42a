"""The whole local stack: the local provider starts vm_bridge as a subprocess, which runs the
devstack reference agent over ACP stdio, which calls the devstack emulator over HTTP."""

import json

import pytest

from sessions_app.sandboxes import local

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def sandbox_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("sandboxes")
    yield root
    from django.test import override_settings

    with override_settings(LOCAL_SANDBOX_ROOT=root):
        local.emulator_stop()


@pytest.fixture
def local_stack(settings, sandbox_root, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    settings.SANDBOX_PROVIDER = "local"
    settings.LOCAL_SANDBOX_ROOT = sandbox_root
    settings.BRIDGE_READ_TIMEOUT = 20.0
    return sandbox_root


def _events(response) -> list[tuple[str, dict]]:
    raw = b"".join(response.streaming_content).decode()
    events = []
    for frame in raw.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in frame.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_session_chat_switch_chat_close(pro_client, local_stack):
    created = pro_client.post("/api/chat/sessions", format="json")
    assert created.status_code == 201, created.json()
    session = created.json()
    assert session["modelId"] == "haiku"
    assert {"haiku", "sonnet", "opus"} <= {m["modelId"] for m in session["availableModels"]}

    first = pro_client.post(
        "/api/chat", {"sessionKey": session["sessionKey"], "prompt": "Build a todo app"}, format="json"
    )
    assert first.status_code == 200 and first["Content-Type"] == "text/event-stream"
    events = _events(first)
    names = [name for name, _ in events]
    assert names[-1] == "done" and "update" in names
    assert events[-1][1]["usage"]["inputTokens"] + events[-1][1]["usage"]["cachedWriteTokens"] > 0

    switched = pro_client.post(
        "/api/chat/model", {"sessionKey": session["sessionKey"], "modelId": "sonnet"}, format="json"
    )
    assert switched.status_code == 200, switched.json()
    assert switched.json()["sessionId"] == session["sessionId"]

    second = _events(
        pro_client.post("/api/chat", {"sessionKey": session["sessionKey"], "prompt": "Add dark mode"}, format="json")
    )
    assert second[-1][0] == "done"
    # A model switch leaves no cache for the new model: the second turn reads nothing.
    assert second[-1][1]["usage"]["cachedReadTokens"] == 0

    closed = pro_client.delete(f"/api/chat/sessions/{session['sessionKey']}")
    assert closed.status_code == 200
    sandbox_dir = next(p for p in local_stack.iterdir() if p.name.startswith("local-"))
    assert not (sandbox_dir / "bridge.pid").exists()


def test_chat_on_a_lost_agent_session_is_409(pro_client, local_stack):
    from sessions_app.models import AgentSession

    key = pro_client.post("/api/chat/sessions", format="json").json()["sessionKey"]
    AgentSession.objects.filter(key=key).update(acp_session_id="no-such-session")

    response = pro_client.post("/api/chat", {"sessionKey": key, "prompt": "hi"}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "agent_session_lost"
    pro_client.delete(f"/api/chat/sessions/{key}")
