"""Faults between the service and a real agent: the local provider runs vm_bridge with the
devstack reference agent, which calls the emulator; the agent is stalled with SIGSTOP."""

import os
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from django.db import connection

from billing.models import SwitchRecord, UsageEvent
from sessions_app.models import AgentSession

from .api import chat_turn, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def _agent_pid(root: Path, sandbox_id: str) -> int:
    bridge_pid = int((root / sandbox_id / "bridge.pid").read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        children = Path(f"/proc/{bridge_pid}/task/{bridge_pid}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise AssertionError("the bridge has no agent process")


@contextmanager
def _stalled(pid: int):
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def _switch(client, key, model_id):
    response = client.post("/api/chat/model", {"sessionKey": key, "modelId": model_id}, format="json")
    if response.status_code == 409 and response.json()["code"] == "confirmation_required":
        quote_id = response.json()["quote"]["id"]
        response = client.post(
            "/api/chat/model", {"sessionKey": key, "modelId": model_id, "quoteId": quote_id}, format="json"
        )
    return response


def _last_usage_model(key) -> str:
    return UsageEvent.objects.filter(session_key=key).order_by("-occurred_at").values_list("model", flat=True)[0]


def _emulator_last_model(root: Path) -> str:
    import json

    url = json.loads((root / "emulator.json").read_text())["url"]
    return httpx.get(f"{url}/_emulator/requests", timeout=5).json()["requests"][-1]["model"]


def test_agent_stalled_past_the_timeout_then_resumed(pro_client, local_stack, asgi_live_server, settings):
    created = pro_client.post("/api/chat/sessions", format="json").json()
    key = created["sessionKey"]
    session = AgentSession.objects.get(key=key)
    agent = _agent_pid(local_stack, session.sandbox_id)

    settings.BRIDGE_READ_TIMEOUT = 1.0
    with _stalled(agent):
        response = _switch(pro_client, key, "sonnet")
    assert response.status_code == 504 and response.json()["code"] == "agent_timeout"
    assert list(SwitchRecord.objects.filter(session__key=key).values_list("outcome", flat=True)) == ["unknown"]
    settings.BRIDGE_READ_TIMEOUT = 20.0
    time.sleep(0.5)  # the resumed agent answers the switch it held

    # The next request (a turn) runs on the agent's model, and the session says so.
    events = chat_turn(asgi_live_server.url, pro_client, key, "Build a todo app")
    assert events[-1][0] == "done"
    assert AgentSession.objects.get(key=key).model_id == "sonnet"
    assert _emulator_last_model(local_stack) == "claude-sonnet-4-6"
    wait_for(lambda: UsageEvent.objects.filter(session_key=key).exists())
    assert _last_usage_model(key) == "claude-sonnet-4-6"

    # Switching back really reaches the agent.
    response = _switch(pro_client, key, "haiku")
    assert response.status_code == 200, response.json()
    assert chat_turn(asgi_live_server.url, pro_client, key, "Add dark mode")[-1][0] == "done"
    assert _emulator_last_model(local_stack) == "claude-haiku-4-5"
    outcomes = list(
        SwitchRecord.objects.filter(session__key=key).order_by("created_at").values_list("outcome", flat=True)
    )
    assert outcomes == ["unknown", "reconciled", "applied"]
    pro_client.delete(f"/api/chat/sessions/{key}")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="kills the request's PostgreSQL connection")
def test_database_connection_lost_during_the_bridge_call(pro_client, local_stack, settings):
    from django.db import connections

    created = pro_client.post("/api/chat/sessions", format="json").json()
    key = created["sessionKey"]
    session = AgentSession.objects.get(key=key)
    agent = _agent_pid(local_stack, session.sandbox_id)
    connection.ensure_connection()
    backend_pid = connection.connection.info.backend_pid

    def kill_the_connection_then_resume():
        time.sleep(0.5)
        other = connections.create_connection("default")
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [backend_pid])
        other.close()
        os.kill(agent, signal.SIGCONT)

    os.kill(agent, signal.SIGSTOP)
    killer = threading.Thread(target=kill_the_connection_then_resume)
    killer.start()
    try:
        response = _switch(pro_client, key, "sonnet")
    finally:
        killer.join()
        os.kill(agent, signal.SIGCONT)

    assert response.status_code == 503 and response.json()["code"] == "switch_outcome_unknown"
    session = AgentSession.objects.get(key=key)
    assert session.lease_token is None  # given back on a new connection, not left to expire
    assert (session.model_id, session.model_unverified) == ("haiku", True)

    quote = pro_client.post("/api/chat/model/quote", {"sessionKey": key, "modelId": "opus"}, format="json")
    assert quote.status_code == 200 and quote.json()["quote"]["fromModelId"] == "sonnet"
    assert list(SwitchRecord.objects.filter(session__key=key).values_list("outcome", flat=True)) == ["reconciled"]
    pro_client.delete(f"/api/chat/sessions/{key}")


def test_a_session_on_an_agent_that_maps_picker_ids_to_5x_models_is_quoted_on_5x_prices(
    pro_client, local_stack, asgi_live_server, settings
):
    import sys

    settings.LOCAL_AGENT_CMD = (
        f"{sys.executable} -m devstack.agent --models haiku=claude-haiku-5-5,sonnet=claude-sonnet-5-5"
    )
    created = pro_client.post("/api/chat/sessions", format="json").json()
    key = created["sessionKey"]
    offered = {m["modelId"]: m["description"] for m in created["availableModels"]}
    assert offered["haiku"].startswith("Haiku 5.5") and offered["sonnet"].startswith("Sonnet 5.5")
    assert AgentSession.objects.get(key=key).model_map["sonnet"]["apiModel"] == "claude-sonnet-5-5"

    prompt = "Build a todo app " + "with a long spec " * 1800
    assert chat_turn(asgi_live_server.url, pro_client, key, prompt)[-1][0] == "done"
    # Until the usage endpoint's whole batch is in (on in-memory SQLite the live server shares the
    # test's connection, which sees a batch's rows before the batch is done).
    wait_for(lambda: AgentSession.objects.get(key=key).model_map["haiku"]["source"] == "usage")
    assert _last_usage_model(key) == "claude-haiku-5-5"

    quote = pro_client.post("/api/chat/model/quote", {"sessionKey": key, "modelId": "sonnet"}, format="json")
    quote = quote.json()["quote"]
    assert quote["priceVersion"]["from"].startswith("claude-haiku-5-5@")
    assert quote["priceVersion"]["to"].startswith("claude-sonnet-5-5@")
    # Both count with the tokenizer of Claude 4.7 and later: no estimate.
    assert quote["cacheState"]["from"] == "warm" and "tokenizer_estimate" not in quote["warnings"]
    pro_client.delete(f"/api/chat/sessions/{key}")
