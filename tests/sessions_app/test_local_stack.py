"""The whole local stack: the local provider starts vm_bridge as a subprocess, which runs the
devstack reference agent over ACP stdio, which calls the devstack emulator over HTTP; the
bridge's usage relay posts signed records back to the live service."""

import json
import time

import httpx
import pytest
from django.conf import settings as django_settings

from billing.models import SwitchReconciliation, UsageEvent
from sessions_app.models import AgentSession
from sessions_app.sandboxes import local


@pytest.fixture(scope="module")
def sandbox_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("sandboxes")
    yield root
    from django.test import override_settings

    with override_settings(LOCAL_SANDBOX_ROOT=root):
        local.local_stack_stop()  # also the bridges of sessions a failed test left open


@pytest.fixture
def local_stack(settings, sandbox_root, monkeypatch, asgi_live_server):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    settings.SANDBOX_PROVIDER = "local"
    settings.LOCAL_SANDBOX_ROOT = sandbox_root
    settings.PUBLIC_BASE_URL = asgi_live_server.url
    settings.BRIDGE_READ_TIMEOUT = 20.0
    # The token count of a quote across tokenizers: on a loaded test machine it may take longer
    # than the production budget, and these tests want the count, not the fallback.
    settings.BRIDGE_COUNT_TOKENS_TIMEOUT = 5.0
    return sandbox_root


def _api(client) -> httpx.Client:
    """The client's calls to the ASGI server the stack's usage relay posts to (PUBLIC_BASE_URL)."""
    return httpx.Client(
        base_url=django_settings.PUBLIC_BASE_URL,
        headers={"Authorization": client._credentials["HTTP_AUTHORIZATION"]},
        timeout=30,
    )


def _events(lines) -> list[tuple[str, dict]]:
    events, name = [], None
    for line in lines:
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[6:])))
    return events


def _chat(client, key, prompt) -> list[tuple[str, dict]]:
    """One turn, streamed by the ASGI server as a browser would read it."""
    with _api(client) as api, api.stream("POST", "/api/chat", json={"sessionKey": key, "prompt": prompt}) as r:
        assert r.status_code == 200 and r.headers["Content-Type"] == "text/event-stream"
        return _events(r.iter_lines())


def _wait_for(condition, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the usage relay"
        time.sleep(0.1)


@pytest.mark.django_db(transaction=True)
def test_session_chat_quote_confirm_chat_reconcile_close(pro_client, local_stack):
    created = pro_client.post("/api/chat/sessions", format="json")
    assert created.status_code == 201, created.json()
    session = created.json()
    key = session["sessionKey"]
    assert session["modelId"] == "haiku"
    assert {"haiku", "sonnet", "opus"} <= {m["modelId"] for m in session["availableModels"]}

    first = _chat(pro_client, key, "Build a todo app " + "with a long spec " * 1800)
    names = [name for name, _ in first]
    assert names[-1] == "done" and "update" in names
    # The relay delivers the turn's usage, exactly as the API billed it, signed by the bridge.
    _wait_for(lambda: UsageEvent.objects.filter(session_key=key).exists())
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

    second = _chat(pro_client, key, "Add dark mode")
    assert second[-1][0] == "done"
    # The new model has no cache of this conversation: the turn reads nothing.
    assert second[-1][1]["usage"]["cachedReadTokens"] == 0
    _wait_for(lambda: SwitchReconciliation.objects.filter(switch__session__key=key).exists())
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
        key = pro_client.post("/api/chat/sessions", format="json").json()["sessionKey"]
        prompt = "Build a todo app " + "with a long spec " * 1800  # ~7k tokens: about 1 s to the first token
        with _api(pro_client) as api, pytest.raises(httpx.ReadTimeout):
            api.post("/api/chat", json={"sessionKey": key, "prompt": prompt}, timeout=0.3)

        _wait_for(lambda: UsageEvent.objects.filter(session_key=key).exists())
        event = UsageEvent.objects.get(session_key=key)
        assert event.cache_write_5m_tokens > 4096  # the prompt was read, and is billed
        assert event.output_tokens <= 1  # the reply stopped at its first token

        after = _chat(pro_client, key, "Still there?")
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
