"""A quote across tokenizers asks the bridge to count the conversation, and never waits on it."""

import sys
import time
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from billing.catalog.selectors import catalog_cache_clear
from billing.models import ApiModel, ModelAlias
from devstack.agent.agent import SYSTEM_PROMPT
from sessions_app.sandboxes import local
from tests.sessions_app.api import chat_turn
from tests.sessions_app.relay import minutes_ago, request_record, signed_post


def _opus_means_opus_48():
    """The catalog's `opus` means a model of the 2026 tokenizer (as current Claude Code's does)."""
    ModelAlias.objects.create(
        alias="opus",
        api_model=ApiModel.objects.get(api_id="claude-opus-4-8"),
        effective_from=timezone.now() - timedelta(days=1),
    )
    catalog_cache_clear()


def _quote(client, key):
    response = client.post("/api/chat/model/quote", {"sessionKey": key, "modelId": "opus"}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()["quote"]


def _warm_session(client, bridge):
    session = client.post("/api/chat/sessions", format="json").json()
    record = request_record(session["sessionId"], "req_1", at=minutes_ago(1), write_5m=100_000)
    assert signed_post(client, sandbox_id="static", key=bridge.token, records=[record]).status_code == 202
    return session


@pytest.mark.django_db
def test_a_stalled_bridge_leaves_the_quote_to_its_estimate_in_time(pro_client, bridge, settings):
    _opus_means_opus_48()
    session = _warm_session(pro_client, bridge)
    bridge.delay = 5.0  # the bridge takes every call but never answers in time

    started = time.monotonic()
    quote = _quote(pro_client, session["sessionKey"])

    assert time.monotonic() - started < 2 * settings.BRIDGE_COUNT_TOKENS_TIMEOUT + 0.5
    assert "tokenizer_estimate" in quote["warnings"] and quote["prefixTokens"]["measured"] is None
    assert (quote["prefixTokens"]["toLow"], quote["prefixTokens"]["toHigh"]) == (100_000, 135_000)
    assert bridge.paths()[-1] == "/session/count_tokens"


@pytest.mark.django_db
def test_a_bridge_without_the_route_gets_the_estimate(pro_client, bridge):
    _opus_means_opus_48()
    session = _warm_session(pro_client, bridge)

    quote = _quote(pro_client, session["sessionKey"])

    assert "tokenizer_estimate" in quote["warnings"]
    assert bridge.paths()[-1] == "/session/count_tokens"  # asked, answered 404


@pytest.mark.django_db
def test_the_same_tokenizer_is_not_counted(pro_client, bridge):
    session = _warm_session(pro_client, bridge)
    _quote(pro_client, session["sessionKey"])  # haiku 4.5 -> opus 4.6
    assert "/session/count_tokens" not in bridge.paths()


@pytest.mark.django_db(transaction=True)
def test_a_quote_across_tokenizers_on_the_real_stack_is_measured(pro_client, local_stack, asgi_live_server, settings):
    # The agent runs `opus` as Opus 4.8 (2026 tokenizer), `haiku` as Haiku 4.5 (the legacy one).
    settings.LOCAL_AGENT_CMD = f"{sys.executable} -m devstack.agent --models opus=claude-opus-4-8"
    key = pro_client.post("/api/chat/sessions", format="json").json()["sessionKey"]
    prompt = "Plan a kanban board " + "with columns and cards " * 1200
    done = chat_turn(asgi_live_server.url, pro_client, key, prompt)
    reply = "".join(
        data["update"]["content"]["text"]
        for event, data in done
        if event == "update" and data["update"].get("sessionUpdate") == "agent_message_chunk"
    )

    quote = _quote(pro_client, key)
    confirmed = pro_client.post(
        "/api/chat/model", {"sessionKey": key, "modelId": "opus", "quoteId": quote["id"]}, format="json"
    )

    prefix = quote["prefixTokens"]
    assert "tokenizer_measured" in quote["warnings"] and "tokenizer_estimate" not in quote["warnings"]
    assert prefix["from"] == done[-1][1]["usage"]["totalTokens"]
    counted = prefix["measured"]
    assert counted["to"] > counted["from"] > 0
    assert prefix["to"] == round(prefix["from"] * counted["to"] / counted["from"])
    # What the whole conversation (system prompt included) really counts on Opus 4.8 lies in the
    # range, give or take the few tokens that frame the reply as a message in the next prompt
    # (the usage that makes the known prefix counts the reply's text only: 3 legacy tokens in the
    # emulator, at most 5 on Opus 4.8); the range is a fraction of the estimate's (x1.00 to x1.35).
    truth = httpx.post(
        f"{local.emulator_url()}/v1/messages/count_tokens",
        json={
            "model": "claude-opus-4-8",
            "system": SYSTEM_PROMPT,
            "messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": reply}],
        },
        headers={"x-api-key": "devstack"},
    ).json()["input_tokens"]
    assert prefix["toLow"] <= truth <= prefix["toHigh"] + 5
    assert abs(prefix["to"] - truth) <= 5  # where the estimate's point is ~15 % off
    assert prefix["toHigh"] - prefix["toLow"] < 0.05 * (prefix["from"] * 0.35)
    # Confirming re-prices with the same counts: the quote is not stale.
    assert confirmed.status_code == 200, confirmed.json()
    pro_client.delete(f"/api/chat/sessions/{key}")
