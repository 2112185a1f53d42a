"""Sessions whose sandbox died, and resume on a session the agent still has.

Against the real stack: the local provider runs vm_bridge with the devstack reference agent;
"the sandbox died" is what stopping the local stack does (as `make run` does when it exits)."""

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from billing.models import SwitchRecord
from sessions_app.models import AgentSession, SessionStatus
from sessions_app.sandboxes import local

from .api import session_start

pytestmark = pytest.mark.django_db(transaction=True)


def _gone(response) -> None:
    assert response.status_code == 410, response.content[:300]
    assert response.json() == {
        "code": "sandbox_gone",
        "message": "The session's sandbox has stopped; start a new session.",
        "extra": {"retryable": False},
    }


def _agent_pid(bridge_pid: int) -> int:
    children = Path(f"/proc/{bridge_pid}/task/{bridge_pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def test_a_dead_sandbox_answers_410_and_the_session_says_so(pro_client, local_stack):
    session = session_start(pro_client)
    key = session["sessionKey"]
    row = AgentSession.objects.get(key=key)
    provider = local.LocalProvider()
    assert provider.exists(sandbox_id=row.sandbox_id) is True
    provider.stop(sandbox_id=row.sandbox_id)
    assert provider.exists(sandbox_id=row.sandbox_id) is False
    assert provider.exists(sandbox_id="local-never-started") is False

    _gone(pro_client.post("/api/chat", {"sessionKey": key, "prompt": "hi"}, format="json"))

    row.refresh_from_db()
    assert row.status == SessionStatus.SANDBOX_GONE and row.sandbox_id in row.last_error
    assert pro_client.get(f"/api/chat/sessions/{key}").json()["status"] == "sandbox_gone"
    # Every later call knows without asking the bridge again.
    _gone(pro_client.post("/api/chat", {"sessionKey": key, "prompt": "hi"}, format="json"))
    _gone(pro_client.post("/api/chat/model", {"sessionKey": key, "modelId": "sonnet"}, format="json"))
    _gone(pro_client.post("/api/chat/model/quote", {"sessionKey": key, "modelId": "sonnet"}, format="json"))
    _gone(pro_client.post(f"/api/chat/sessions/{key}/resume", format="json"))
    # It can still be closed.
    closed = pro_client.delete(f"/api/chat/sessions/{key}")
    assert closed.status_code == 200 and closed.json()["status"] == "closed"


def test_a_dead_sandbox_found_by_a_turn_on_the_asgi_server_or_a_cancel_answers_410(
    pro_client, local_stack, asgi_live_server
):
    turn_key, cancel_key = session_start(pro_client)["sessionKey"], session_start(pro_client)["sessionKey"]
    rows = {key: AgentSession.objects.get(key=key) for key in (turn_key, cancel_key)}
    for row in rows.values():
        local.LocalProvider().stop(sandbox_id=row.sandbox_id)

    # The turn as it is served: the relay on the event loop, the session marked on a view thread.
    headers = {"Authorization": pro_client._credentials["HTTP_AUTHORIZATION"]}
    response = httpx.post(
        f"{asgi_live_server.url}/api/chat", json={"sessionKey": turn_key, "prompt": "hi"}, headers=headers, timeout=30
    )
    _gone(response)
    _gone(pro_client.post("/api/chat/cancel", {"sessionKey": cancel_key}, format="json"))

    for row in rows.values():
        row.refresh_from_db()
        assert row.status == SessionStatus.SANDBOX_GONE
    # A gone session has no turn to stop: a no-op from then on.
    assert pro_client.post("/api/chat/cancel", {"sessionKey": cancel_key}, format="json").json() == {"ok": True}


def test_a_switch_that_finds_the_sandbox_gone_is_in_the_ledger(pro_client, local_stack):
    key = session_start(pro_client)["sessionKey"]
    row = AgentSession.objects.get(key=key)
    local.LocalProvider().stop(sandbox_id=row.sandbox_id)

    _gone(pro_client.post("/api/chat/model", {"sessionKey": key, "modelId": "sonnet"}, format="json"))

    record = SwitchRecord.objects.get(session_id=row.pk)
    assert record.outcome == "failed" and record.error_code == "sandbox_gone"
    row.refresh_from_db()
    assert row.status == SessionStatus.SANDBOX_GONE and row.model_id == "haiku" and row.lease_token is None


def test_resume_leaves_a_live_session_alone_unless_forced(pro_client, local_stack):
    session = session_start(pro_client)
    key, first_id = session["sessionKey"], session["sessionId"]

    resumed = pro_client.post(f"/api/chat/sessions/{key}/resume", format="json")

    assert resumed.status_code == 200, resumed.json()
    body = resumed.json()
    assert body["resumed"] is False and body["reason"] == "session_alive"
    assert body["sessionId"] == first_id and body["modelId"] == "haiku"
    assert {"haiku", "sonnet"} <= {m["modelId"] for m in body["availableModels"]}
    row = AgentSession.objects.get(key=key)
    assert row.acp_session_id == first_id and row.earlier_acp_session_ids == [] and row.lease_token is None

    forced = pro_client.post(f"/api/chat/sessions/{key}/resume", {"force": True}, format="json")

    assert forced.status_code == 200, forced.json()
    assert forced.json()["resumed"] is True and forced.json()["reason"] == "forced"
    assert forced.json()["sessionId"] != first_id
    row.refresh_from_db()
    assert row.acp_session_id == forced.json()["sessionId"] and row.earlier_acp_session_ids == [first_id]


def test_resume_recreates_a_session_the_agent_lost(pro_client, local_stack):
    session = session_start(pro_client)
    key, first_id = session["sessionKey"], session["sessionId"]
    switched = pro_client.post("/api/chat/model", {"sessionKey": key, "modelId": "sonnet"}, format="json")
    assert switched.status_code == 200, switched.json()
    row = AgentSession.objects.get(key=key)
    bridge_pid = int((local_stack / row.sandbox_id / "bridge.pid").read_text())
    agent = _agent_pid(bridge_pid)
    os.kill(agent, signal.SIGKILL)  # the bridge starts a new agent, which knows no session
    deadline = time.monotonic() + 15
    while _agent_pid_or_none(bridge_pid) in (None, agent):
        assert time.monotonic() < deadline, "the bridge did not restart its agent"
        time.sleep(0.1)

    resumed = pro_client.post(f"/api/chat/sessions/{key}/resume", format="json")

    assert resumed.status_code == 200, resumed.json()
    body = resumed.json()
    assert body["resumed"] is True and body["reason"] == "session_lost"
    assert body["sessionId"] != first_id and body["modelId"] == "sonnet"
    done = pro_client.post("/api/chat", {"sessionKey": key, "prompt": "still there?"}, format="json")
    assert done.status_code == 200 and b"event: done" in b"".join(done.streaming_content)


def _agent_pid_or_none(bridge_pid: int) -> int | None:
    try:
        return _agent_pid(bridge_pid)
    except AssertionError:
        return None


@pytest.mark.parametrize("body", [{"force": "yes"}, {"force": 1}, {"forced": True}, [True]])
def test_a_malformed_resume_body_is_400(pro_client, bridge, body):
    key = pro_client.post("/api/chat/sessions", format="json").json()["sessionKey"]
    response = pro_client.post(f"/api/chat/sessions/{key}/resume", body, format="json")
    assert response.status_code == 400 and response.json()["code"] == "invalid_request"


def test_an_unreachable_bridge_of_a_sandbox_that_exists_stays_retryable(pro_client, bridge, settings):
    key = pro_client.post("/api/chat/sessions", format="json").json()["sessionKey"]
    AgentSession.objects.filter(key=key).update(bridge_url="http://127.0.0.1:9")  # nothing listens

    response = pro_client.post("/api/chat", {"sessionKey": key, "prompt": "hi"}, format="json")

    assert response.status_code == 502
    assert response.json()["code"] == "agent_unreachable" and response.json()["extra"]["retryable"] is True
    assert AgentSession.objects.get(key=key).status == SessionStatus.READY


def test_a_left_alone_session_whose_model_is_in_doubt_takes_the_agents_word(pro_client, bridge):
    key = pro_client.post("/api/chat/sessions", format="json").json()["sessionKey"]
    row = AgentSession.objects.get(key=key)
    bridge.sessions[row.acp_session_id] = "sonnet"  # the agent applied a switch the service gave up on
    AgentSession.objects.filter(pk=row.pk).update(model_unverified=True)

    resumed = pro_client.post(f"/api/chat/sessions/{key}/resume", format="json")

    assert resumed.status_code == 200, resumed.json()
    body = resumed.json()
    assert body["resumed"] is False and body["sessionId"] == row.acp_session_id and body["modelId"] == "sonnet"
    row.refresh_from_db()
    assert (row.model_id, row.model_unverified, row.lease_token) == ("sonnet", False, None)
    assert SwitchRecord.objects.get(session_id=row.pk).outcome == "reconciled"
