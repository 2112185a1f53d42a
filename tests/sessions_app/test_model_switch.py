"""POST /api/chat/model: every answer it can give."""

import uuid

import pytest

from sessions_app.models import AgentSession
from tests.conftest import client_for

from .api import session_start

pytestmark = pytest.mark.django_db

URL = "/api/chat/model"


def _switch(client, key, model_id="sonnet", **kwargs):
    return client.post(URL, {"sessionKey": key, "modelId": model_id}, format="json", **kwargs)


def _stored_model(key) -> str:
    return AgentSession.objects.get(key=key).model_id


def test_switch_is_forwarded_with_the_same_acp_session(pro_client, bridge):
    session = session_start(pro_client)

    response = _switch(pro_client, session["sessionKey"], "opus")

    assert response.status_code == 200
    body = response.json()
    quote = body.pop("quote")
    assert body == {
        "ok": True,
        "sessionKey": session["sessionKey"],
        "sessionId": session["sessionId"],
        "modelId": "opus",
        "previousModelId": "haiku",
    }
    # No turn yet: nothing to rebuild, so the switch needs no confirmation.
    assert quote["taxUsd"] == "0.000000" and "first_turn_free" in quote["warnings"]
    path, body, headers = bridge.calls[-1]
    assert path == "/session/set_model"
    assert body == {"sessionId": session["sessionId"], "modelId": "opus"}
    assert headers["Authorization"] == f"Bearer {bridge.token}"
    assert _stored_model(session["sessionKey"]) == "opus"


def test_switch_to_the_current_model_is_a_no_op(pro_client, bridge):
    session = session_start(pro_client)
    calls_before = len(bridge.calls)

    response = _switch(pro_client, session["sessionKey"], "haiku")

    assert response.status_code == 200
    assert response.json()["previousModelId"] == "haiku" and response.json()["modelId"] == "haiku"
    assert len(bridge.calls) == calls_before


def test_unauthenticated_is_401(anon_client):
    response = _switch(anon_client, str(uuid.uuid4()))
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_bad_token_is_401(anon_client):
    anon_client.credentials(HTTP_AUTHORIZATION="Token nope")
    response = _switch(anon_client, str(uuid.uuid4()))
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


@pytest.mark.parametrize(
    "payload",
    [
        {"sessionKey": "not-a-uuid", "modelId": "sonnet"},
        {"sessionKey": 12345, "modelId": "sonnet"},
        {"sessionKey": str(uuid.uuid4()), "modelId": 7},
        {"sessionKey": str(uuid.uuid4()), "modelId": ["sonnet"]},
        {"sessionKey": str(uuid.uuid4())},
        {"modelId": "sonnet"},
        [],
    ],
)
def test_wrong_types_and_missing_fields_are_400(pro_client, payload):
    response = pro_client.post(URL, payload, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_request" and body["message"]


def test_malformed_json_is_400(pro_client):
    response = pro_client.post(URL, data='{"sessionKey": ', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"


def test_unknown_model_is_400(pro_client, bridge):
    session = session_start(pro_client)
    response = _switch(pro_client, session["sessionKey"], "gpt-5")
    assert response.status_code == 400
    assert response.json()["code"] == "unknown_model"
    assert "haiku" in response.json()["extra"]["knownModels"]


def test_model_rejected_by_the_agent_is_400_with_its_list(pro_client, bridge):
    session = session_start(pro_client)
    bridge.available = ["haiku", "sonnet"]
    response = _switch(pro_client, session["sessionKey"], "opus")
    assert response.status_code == 400
    assert response.json()["code"] == "model_rejected"
    assert response.json()["extra"]["availableModels"] == ["haiku", "sonnet"]
    assert _stored_model(session["sessionKey"]) == "haiku"


def test_missing_session_is_404(pro_client, bridge):
    response = _switch(pro_client, str(uuid.uuid4()))
    assert response.status_code == 404
    assert response.json()["code"] == "session_not_found"


def test_another_users_session_is_404_and_untouched(pro_client, bridge, db):
    session = session_start(pro_client)
    other = client_for("other-pro", "pro")
    response = _switch(other, session["sessionKey"], "opus")
    assert response.status_code == 404
    assert response.json()["code"] == "session_not_found"
    assert _stored_model(session["sessionKey"]) == "haiku"


def test_free_user_needs_a_subscription_for_sonnet(free_client, bridge):
    session = session_start(free_client)
    response = _switch(free_client, session["sessionKey"], "sonnet")
    assert response.status_code == 402
    assert response.json()["code"] == "subscription_required"
    assert bridge.paths().count("/session/set_model") == 1  # only the one that applied haiku at create


@pytest.mark.parametrize("status", ["past_due", "canceled"])
def test_lapsed_subscription_is_402(db, bridge, status):
    client = client_for(f"lapsed-{status}", "pro", status=status)
    session = session_start(client)
    response = _switch(client, session["sessionKey"], "sonnet")
    assert response.status_code == 402
    assert response.json()["extra"]["status"] == status


def test_trialing_counts_as_active(db, bridge):
    client = client_for("trial", "pro", status="trialing")
    assert _switch(client, session_start(client)["sessionKey"], "sonnet").status_code == 200


def test_model_not_in_plan_is_403(pro_client, bridge):
    session = session_start(pro_client)
    response = _switch(pro_client, session["sessionKey"], "opus[1m]")
    assert response.status_code == 403
    assert response.json()["code"] == "model_not_in_plan"
    assert "opus[1m]" not in response.json()["extra"]["allowedModels"]


def test_one_million_context_where_the_plan_includes_it(max20_client, bridge):
    session = session_start(max20_client)
    assert _switch(max20_client, session["sessionKey"], "opus[1m]").status_code == 200


def test_unreachable_agent_is_502_and_model_unchanged(pro_client, bridge):
    session = session_start(pro_client)
    bridge.drop_connection = True
    response = _switch(pro_client, session["sessionKey"])
    assert response.status_code == 502
    assert response.json()["code"] == "agent_unreachable"
    assert _stored_model(session["sessionKey"]) == "haiku"


def test_transient_bridge_failure_is_retried(pro_client, bridge):
    session = session_start(pro_client)
    bridge.fail(503, "agent_starting", times=1)
    response = _switch(pro_client, session["sessionKey"])
    assert response.status_code == 200
    assert bridge.paths()[-2:] == ["/session/set_model", "/session/set_model"]


def test_slow_agent_is_504_and_model_unchanged(pro_client, bridge, settings):
    session = session_start(pro_client)
    settings.BRIDGE_READ_TIMEOUT = 0.3
    bridge.delay = 1.0
    response = _switch(pro_client, session["sessionKey"])
    assert response.status_code == 504
    assert response.json()["code"] == "agent_timeout"
    # A timeout is not retried: the user would wait twice as long for the same answer.
    assert bridge.paths().count("/session/set_model") == 2  # one at create, one here
    assert _stored_model(session["sessionKey"]) == "haiku"


def test_lost_agent_session_is_409(pro_client, bridge):
    session = session_start(pro_client)
    bridge.sessions.clear()
    response = _switch(pro_client, session["sessionKey"])
    assert response.status_code == 409
    assert response.json()["code"] == "agent_session_lost"
    assert _stored_model(session["sessionKey"]) == "haiku"


def test_body_over_64_kib_is_413(pro_client):
    response = pro_client.post(URL, data='{"pad": "' + "x" * (64 * 1024) + '"}', content_type="application/json")
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


def test_every_error_has_the_same_shape(pro_client, bridge):
    response = _switch(pro_client, "nope")
    assert set(response.json()) == {"code", "message", "extra"}


def test_switches_are_rate_limited_per_user(pro_client, bridge, monkeypatch):
    from django.core.cache import cache
    from rest_framework.throttling import ScopedRateThrottle

    session = session_start(pro_client)
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"model_switch": "2/min"})
    cache.delete_many([f"throttle_model_switch_{pro_client.user.pk}"])
    codes = [_switch(pro_client, session["sessionKey"], m).status_code for m in ("sonnet", "haiku", "sonnet")]
    assert codes == [200, 200, 429]
    response = _switch(pro_client, session["sessionKey"], "opus")
    assert response.json()["code"] == "throttled" and response.json()["extra"]["retryAfterSeconds"] > 0
    assert AgentSession.objects.get(key=session["sessionKey"]).model_id == "haiku"  # the refused switch changed nothing
