import pytest

from sessions_app.models import AgentSession, SessionStatus

pytestmark = pytest.mark.django_db


def test_create_session_applies_the_free_model(pro_client, bridge):
    response = pro_client.post("/api/chat/sessions", format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["modelId"] == "haiku"
    assert body["sessionId"].startswith("acp-")
    assert {m["modelId"] for m in body["availableModels"]} >= {"haiku", "sonnet", "opus"}
    # The double starts sessions on "default": the backend must have applied haiku explicitly.
    assert bridge.sessions[body["sessionId"]] == "haiku"
    assert bridge.paths() == ["/session/new", "/session/set_model"]
    session = AgentSession.objects.get(key=body["sessionKey"])
    assert session.status == SessionStatus.READY and session.user == pro_client.user


def test_session_never_shows_its_secrets(pro_client, bridge):
    key = pro_client.post("/api/chat/sessions", format="json").json()["sessionKey"]
    for response in (pro_client.get(f"/api/chat/sessions/{key}"), pro_client.get("/api/chat/sessions")):
        raw = response.content.decode()
        assert response.status_code == 200
        assert bridge.token not in raw and bridge.url not in raw and "bridge" not in raw.lower()


def test_oauth_users_get_one_hour_cache_ttl(db, bridge):
    from tests.conftest import client_for

    client = client_for("oauth-user", "max5", billing="oauth")
    assert client.post("/api/chat/sessions", format="json").json()["cacheTtl"] == "1h"


def test_another_users_session_is_not_found(pro_client, free_client, bridge):
    key = pro_client.post("/api/chat/sessions", format="json").json()["sessionKey"]

    for response in (
        free_client.get(f"/api/chat/sessions/{key}"),
        free_client.delete(f"/api/chat/sessions/{key}"),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == "session_not_found"


def test_unknown_and_malformed_keys_are_not_found(pro_client, bridge):
    for key, code in (("4b1f5a4e-0000-4000-8000-000000000000", "session_not_found"), ("not-a-uuid", "not_found")):
        response = pro_client.get(f"/api/chat/sessions/{key}")
        assert response.status_code == 404
        assert response.json()["code"] == code


def test_delete_closes_the_session_and_refuses_switches(pro_client, bridge):
    key = pro_client.post("/api/chat/sessions", format="json").json()["sessionKey"]

    response = pro_client.delete(f"/api/chat/sessions/{key}")
    assert response.status_code == 200 and response.json()["status"] == "closed"
    assert pro_client.delete(f"/api/chat/sessions/{key}").status_code == 200  # idempotent

    switch = pro_client.post("/api/chat/model", {"sessionKey": key, "modelId": "sonnet"}, format="json")
    assert switch.status_code == 409 and switch.json()["code"] == "session_closed"


def test_bridge_down_at_create_fails_cleanly(pro_client, bridge, settings):
    settings.BRIDGE_STATIC_URL = "http://127.0.0.1:9"  # discard port: nothing listens

    response = pro_client.post("/api/chat/sessions", format="json")

    assert response.status_code == 502
    assert response.json()["code"] == "agent_unreachable"
    assert AgentSession.objects.get().status == SessionStatus.FAILED


def test_resume_recreates_the_agent_session_with_the_stored_model(pro_client, bridge):
    created = pro_client.post("/api/chat/sessions", format="json").json()
    key = created["sessionKey"]
    assert (
        pro_client.post("/api/chat/model", {"sessionKey": key, "modelId": "sonnet"}, format="json").status_code == 200
    )
    bridge.sessions.clear()  # the agent restarted and forgot every session

    lost = pro_client.post("/api/chat/model", {"sessionKey": key, "modelId": "opus"}, format="json")
    assert lost.status_code == 409 and lost.json()["code"] == "agent_session_lost"

    resumed = pro_client.post(f"/api/chat/sessions/{key}/resume", format="json")
    assert resumed.status_code == 200
    new_id = resumed.json()["sessionId"]
    assert new_id != created["sessionId"]
    assert bridge.sessions[new_id] == "sonnet"
    assert resumed.json()["modelId"] == "sonnet"


def test_unauthenticated_requests_get_401(anon_client):
    for method, path in (("get", "/api/chat/sessions"), ("post", "/api/chat/sessions")):
        response = getattr(anon_client, method)(path)
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"


def test_chat_for_an_event_stream_only_client_errors_as_an_event(pro_client, bridge):
    key = pro_client.post("/api/chat/sessions", format="json").json()["sessionKey"]
    bridge.sessions.clear()

    response = pro_client.post(
        "/api/chat", {"sessionKey": key, "prompt": "hi"}, format="json", HTTP_ACCEPT="text/event-stream"
    )

    assert response.status_code == 409
    assert response["Content-Type"].startswith("text/event-stream")
    frame = response.content.decode()
    assert frame.startswith("event: error\ndata: ") and '"code":"agent_session_lost"' in frame


def test_an_unknown_sandbox_provider_fails_the_start_cleanly(pro_client, settings):
    settings.SANDBOX_PROVIDER = "nowhere"

    response = pro_client.post("/api/chat/sessions", format="json")

    assert response.status_code == 503 and response.json()["code"] == "sandbox_unavailable"
    assert response.json()["extra"]["retryable"] is False
    session = AgentSession.objects.get()
    assert session.status == SessionStatus.FAILED and "nowhere" in session.last_error
