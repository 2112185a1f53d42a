"""The whole local stack: the local provider starts vm_bridge as a subprocess, which runs the
devstack reference agent over ACP stdio, which calls the devstack emulator over HTTP; the
bridge's usage relay posts signed records back to the live service."""

import httpx
import pytest

from billing.models import SwitchReconciliation, UsageEvent
from sessions_app.models import AgentSession
from sessions_app.sandboxes import local

from .api import chat_turn, http_api, session_start, wait_for


@pytest.mark.django_db(transaction=True)
def test_session_chat_quote_confirm_chat_reconcile_close(pro_client, local_stack, asgi_live_server):
    session = session_start(pro_client)
    key = session["sessionKey"]
    assert session["modelId"] == "haiku"
    assert {"haiku", "sonnet", "opus"} <= {m["modelId"] for m in session["availableModels"]}

    first = chat_turn(asgi_live_server.url, pro_client, key, "Build a todo app " + "with a long spec " * 1800)
    names = [name for name, _ in first]
    assert names[-1] == "done" and "update" in names
    # The relay delivers the turn's usage, exactly as the API billed it, signed by the bridge.
    wait_for(lambda: UsageEvent.objects.filter(session_key=key).exists())
    event = UsageEvent.objects.get(session_key=key)
    assert event.model == "claude-haiku-4-5" and event.cache_write_5m_tokens > 4096

    quote = pro_client.post("/api/chat/model/quote", {"sessionKey": key, "modelId": "sonnet"}, format="json")
    assert quote.status_code == 200, quote.json()
    quote = quote.json()["quote"]
    assert quote["cacheState"]["from"] == "warm" and float(quote["taxUsd"]) > 0

    unconfirmed = pro_client.post("/api/chat/model", {"sessionKey": key, "modelId": "sonnet"}, format="json")
    assert unconfirmed.status_code == 409 and unconfirmed.json()["code"] == "confirmation_required"
    confirmed = pro_client.post(
        "/api/chat/model", {"sessionKey": key, "modelId": "sonnet", "quoteId": quote["id"]}, format="json"
    )
    assert confirmed.status_code == 200, confirmed.json()
    assert confirmed.json()["sessionId"] == session["sessionId"]

    second = chat_turn(asgi_live_server.url, pro_client, key, "Add dark mode")
    assert second[-1][0] == "done"
    # The new model has no cache of this conversation: the turn reads nothing.
    assert second[-1][1]["usage"]["cachedReadTokens"] == 0
    wait_for(lambda: SwitchReconciliation.objects.filter(switch__session__key=key).exists())
    (row,) = pro_client.get(f"/api/chat/sessions/{key}/switches").json()["switches"]
    assert row["quotedTaxUsd"] == quote["taxUsd"] and row["actualTaxUsd"] is not None

    closed = pro_client.delete(f"/api/chat/sessions/{key}")
    assert closed.status_code == 200
    sandbox_id = AgentSession.objects.get(key=key).sandbox_id
    assert not (local_stack / sandbox_id / "bridge.pid").exists()


@pytest.mark.django_db(transaction=True)
def test_chat_on_a_lost_agent_session_is_409(pro_client, local_stack):
    key = pro_client.post("/api/chat/sessions", format="json").json()["sessionKey"]
    AgentSession.objects.filter(key=key).update(acp_session_id="no-such-session")

    response = pro_client.post("/api/chat", {"sessionKey": key, "prompt": "hi"}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "agent_session_lost"
    pro_client.delete(f"/api/chat/sessions/{key}")


@pytest.mark.django_db(transaction=True)
def test_a_turn_left_by_its_client_is_cancelled_and_its_usage_recorded(
    pro_client, settings, tmp_path, monkeypatch, asgi_live_server
):
    """The client goes away while the agent reads a long prompt (the emulator at a real model's
    pace): the agent stops at its first token, and the usage of what it did is still billed."""
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    settings.SANDBOX_PROVIDER = "local"
    settings.LOCAL_SANDBOX_ROOT = tmp_path
    settings.EMULATOR_LATENCY = "realistic"
    settings.PUBLIC_BASE_URL = asgi_live_server.url
    settings.BRIDGE_READ_TIMEOUT = 20.0
    try:
        key = session_start(pro_client)["sessionKey"]
        prompt = "Build a todo app " + "with a long spec " * 1800  # ~7k tokens: about 1 s to the first token
        with http_api(asgi_live_server.url, pro_client) as api, pytest.raises(httpx.ReadTimeout):
            api.post("/api/chat", json={"sessionKey": key, "prompt": prompt}, timeout=0.3)

        wait_for(lambda: UsageEvent.objects.filter(session_key=key).exists())
        event = UsageEvent.objects.get(session_key=key)
        assert event.cache_write_5m_tokens > 4096  # the prompt was read, and is billed
        assert event.output_tokens <= 1  # the reply stopped at its first token

        after = chat_turn(asgi_live_server.url, pro_client, key, "Still there?")
        assert after[-1][0] == "done" and after[-1][1]["stopReason"] == "end_turn"
    finally:
        local.local_stack_stop()


def test_stop_local_sandboxes_stops_what_a_dev_server_left(settings, tmp_path, monkeypatch):
    import os

    from django.core.management import call_command

    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    settings.LOCAL_SANDBOX_ROOT = tmp_path
    sandbox = local.LocalProvider().start(session_key="k", user_id=1)
    pid = int((tmp_path / sandbox.sandbox_id / "bridge.pid").read_text())

    call_command("stop_local_sandboxes")

    assert not (tmp_path / sandbox.sandbox_id / "bridge.pid").exists()
    assert not (tmp_path / "emulator.json").exists()
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
