"""The agent is the truth about the session's model, against the loopback bridge double.

The double applies a switch after its delay even when the backend gave up waiting (as a
stalled agent does once it resumes) and reports what it runs on /session/state.
"""

import time

import pytest
from django.db import OperationalError

from billing.models import SwitchRecord
from sessions_app.models import AgentSession

from .api import session_start
from .relay import minutes_ago, request_record, signed_post

pytestmark = pytest.mark.django_db


def _switch(client, key, model_id, **extra):
    return client.post("/api/chat/model", {"sessionKey": key, "modelId": model_id, **extra}, format="json")


def _quote(client, key, model_id):
    return client.post("/api/chat/model/quote", {"sessionKey": key, "modelId": model_id}, format="json")


def _ledger(key) -> list[tuple[str, str, str]]:
    rows = SwitchRecord.objects.filter(session__key=key).order_by("created_at", "pk")
    return list(rows.values_list("from_model_id", "to_model_id", "outcome"))


def _timed_out_switch(client, bridge, settings, key, model_id):
    settings.BRIDGE_READ_TIMEOUT = 0.3
    bridge.delay = 0.8
    response = _switch(client, key, model_id)
    time.sleep(0.8)  # the agent applies it after all
    bridge.delay = 0.0
    settings.BRIDGE_READ_TIMEOUT = 3.0
    return response


def test_a_timed_out_switch_is_unknown_and_the_next_quote_takes_the_agents_model(pro_client, bridge, settings):
    key = session_start(pro_client)["sessionKey"]

    response = _timed_out_switch(pro_client, bridge, settings, key, "sonnet")

    assert response.status_code == 504 and response.json()["code"] == "agent_timeout"
    session = AgentSession.objects.get(key=key)
    assert (session.model_id, session.model_unverified, session.lease_token) == ("haiku", True, None)
    assert _ledger(key) == [("haiku", "sonnet", "unknown")]

    quote = _quote(pro_client, key, "opus")

    assert quote.status_code == 200, quote.json()
    assert quote.json()["quote"]["fromModelId"] == "sonnet"
    session = AgentSession.objects.get(key=key)
    assert (session.model_id, session.model_unverified) == ("sonnet", False)
    assert _ledger(key) == [("haiku", "sonnet", "unknown"), ("haiku", "sonnet", "reconciled")]
    row = SwitchRecord.objects.get(session__key=key, outcome="reconciled")
    assert row.error_code == "agent_state" and "reports sonnet" in row.error_message


def test_switching_back_after_an_unknown_switch_reaches_the_agent(pro_client, bridge, settings):
    started = session_start(pro_client)
    key, acp_id = started["sessionKey"], started["sessionId"]
    _timed_out_switch(pro_client, bridge, settings, key, "sonnet")
    assert bridge.sessions[acp_id] == "sonnet"  # the agent runs sonnet; the database says haiku
    calls = len(bridge.paths())

    # "Already on haiku" would be a no-op on the stored model: it is checked with the agent first.
    response = _switch(pro_client, key, "haiku")

    assert response.status_code in (200, 409), response.json()
    if response.status_code == 409:  # the switch has a cost: confirm it
        quote_id = response.json()["quote"]["id"]
        response = _switch(pro_client, key, "haiku", quoteId=quote_id)
        assert response.status_code == 200, response.json()
    assert bridge.paths()[calls:].count("/session/state") == 1
    assert "/session/set_model" in bridge.paths()[calls:]
    assert bridge.sessions[acp_id] == "haiku"
    assert AgentSession.objects.get(key=key).model_id == "haiku"
    assert [row[2] for row in _ledger(key)] == ["unknown", "reconciled", "applied"]


def test_a_turn_reconciles_before_it_runs(pro_client, bridge, settings):
    key = session_start(pro_client)["sessionKey"]
    _timed_out_switch(pro_client, bridge, settings, key, "opus")
    calls = len(bridge.paths())

    response = pro_client.post("/api/chat", {"sessionKey": key, "prompt": "hi"}, format="json")

    assert b"event: done" in b"".join(response.streaming_content)
    assert bridge.paths()[calls] == "/session/state"
    assert AgentSession.objects.get(key=key).model_id == "opus"


def test_an_unflagged_session_never_asks_the_agent(pro_client, bridge):
    key = session_start(pro_client)["sessionKey"]
    assert _switch(pro_client, key, "sonnet").status_code == 200
    assert _quote(pro_client, key, "haiku").status_code == 200
    assert "/session/state" not in bridge.paths()


def test_a_pending_switch_is_409_for_the_next_switch(pro_client, bridge, settings, monkeypatch):
    key = session_start(pro_client)["sessionKey"]
    _timed_out_switch(pro_client, bridge, settings, key, "sonnet")
    from sessions_app.bridge_client import BridgeClient

    monkeypatch.setattr(
        BridgeClient,
        "session_state",
        lambda self, **kw: {"modelId": "haiku", "switchPending": "sonnet", "lastSwitch": None},
    )

    response = _switch(pro_client, key, "opus")

    assert response.status_code == 409 and response.json()["code"] == "switch_pending"
    session = AgentSession.objects.get(key=key)
    assert (session.model_unverified, session.lease_token) == (True, None)


def test_database_lost_while_recording_a_switch(pro_client, bridge, monkeypatch):
    started = session_start(pro_client)
    key, acp_id = started["sessionKey"], started["sessionId"]
    import sessions_app.switching as switching

    real = switching.session_lease_end

    def lost(*args, **kwargs):
        monkeypatch.setattr(switching, "session_lease_end", real)
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(switching, "session_lease_end", lost)
    response = _switch(pro_client, key, "sonnet")

    assert response.status_code == 503 and response.json()["code"] == "switch_outcome_unknown"
    assert bridge.sessions[acp_id] == "sonnet"
    session = AgentSession.objects.get(key=key)
    # No lease left held past the request; the flag written before the call stays.
    assert (session.lease_token, session.model_id, session.model_unverified) == (None, "haiku", True)
    assert _ledger(key) == []

    assert _quote(pro_client, key, "opus").json()["quote"]["fromModelId"] == "sonnet"
    assert _ledger(key) == [("haiku", "sonnet", "reconciled")]


@pytest.mark.django_db(transaction=True)  # as in production: the request is in no transaction
def test_the_lease_is_given_back_on_a_fresh_connection(pro_client, bridge, monkeypatch):
    key = session_start(pro_client)["sessionKey"]
    import sessions_app.leases as leases

    real, failures = leases.session_lease_end, []

    def flaky(lease, **kwargs):
        if len(failures) < 2:
            failures.append(1)
            raise OperationalError("connection already closed")
        return real(lease, **kwargs)

    monkeypatch.setattr("sessions_app.switching.switch_confirmation", lambda **kw: 1 / 0)
    monkeypatch.setattr(leases, "session_lease_end", flaky)
    with pytest.raises(ZeroDivisionError):
        _switch(pro_client, key, "sonnet")

    assert len(failures) == 2
    assert AgentSession.objects.get(key=key).lease_token is None


def test_a_turn_billed_on_another_model_corrects_the_session(pro_client, anon_client, bridge):
    started = session_start(pro_client)
    key, acp_id = started["sessionKey"], started["sessionId"]
    record = request_record(
        acp_id, "req_1", at=minutes_ago(0.1), model="claude-opus-4-6", write_5m=5000, modelId="opus"
    )

    response = signed_post(anon_client, sandbox_id="static", key=bridge.token, records=[record])

    assert response.status_code == 202, response.json()
    session = AgentSession.objects.get(key=key)
    assert session.model_id == "opus"
    assert session.model_map["opus"]["apiModel"] == "claude-opus-4-6"
    assert session.model_map["opus"]["source"] == "usage"
    row = SwitchRecord.objects.get(session__key=key)
    assert (row.from_model_id, row.to_model_id, row.outcome, row.error_code) == (
        "haiku",
        "opus",
        "reconciled",
        "usage_model",
    )


def test_usage_from_before_the_last_switch_corrects_nothing(pro_client, anon_client, bridge):
    started = session_start(pro_client)
    key, acp_id = started["sessionKey"], started["sessionId"]
    assert _switch(pro_client, key, "sonnet").status_code == 200
    # The turn before the switch, relayed late, ran on haiku: that is no mismatch.
    record = request_record(acp_id, "req_1", at=minutes_ago(1), model="claude-haiku-4-5", modelId="haiku")

    assert signed_post(anon_client, sandbox_id="static", key=bridge.token, records=[record]).status_code == 202

    assert AgentSession.objects.get(key=key).model_id == "sonnet"
    assert [row[2] for row in _ledger(key)] == ["applied"]


CLAUDE_CODE_5X = {
    "default": "Default (recommended)",
    "haiku": "Haiku 5.5 · Fastest for quick answers",
    "sonnet": "Sonnet 5.5 · Best for everyday tasks",
}


def test_the_agents_model_options_feed_the_map_the_quote_and_the_ledger(pro_client, anon_client, bridge):
    bridge.descriptions = CLAUDE_CODE_5X
    started = session_start(pro_client)
    key, acp_id = started["sessionKey"], started["sessionId"]
    assert started["modelMap"]["sonnet"]["apiModel"] == "claude-sonnet-5-5"  # for the picker's labels
    session = AgentSession.objects.get(key=key)
    assert {k: (v["apiModel"], v["source"]) for k, v in session.model_map.items()} == {
        "haiku": ("claude-haiku-5-5", "offer"),
        "sonnet": ("claude-sonnet-5-5", "offer"),
    }
    # A turn on haiku, billed (and priced) as Haiku 5.5.
    record = request_record(acp_id, "req_1", at=minutes_ago(0.5), model="claude-haiku-5-5", write_5m=100_000)
    record["modelId"] = "haiku"
    assert signed_post(anon_client, sandbox_id="static", key=bridge.token, records=[record]).status_code == 202
    assert AgentSession.objects.get(key=key).model_map["haiku"]["source"] == "usage"

    quote = _quote(pro_client, key, "sonnet").json()["quote"]

    assert quote["priceVersion"]["from"].startswith("claude-haiku-5-5@")
    assert quote["priceVersion"]["to"].startswith("claude-sonnet-5-5@")
    # Haiku 5.5 counts with the tokenizer of Claude 4.7 and later, as Sonnet 5.5 does (Haiku 5.5's
    # model page): the prefix is the same count, not an estimate.
    assert "tokenizer_estimate" not in quote["warnings"]
    assert quote["prefixTokens"]["toLow"] == quote["prefixTokens"]["to"] == quote["prefixTokens"]["toHigh"]

    assert _switch(pro_client, key, "sonnet", quoteId=quote["id"]).status_code == 200
    row = SwitchRecord.objects.select_related("price_version_to__api_model").get(session__key=key)
    assert row.price_version_to.api_model.api_id == "claude-sonnet-5-5"


def test_an_acp_turn_record_is_priced_on_the_sessions_map(pro_client, anon_client, bridge):
    from billing.models import UsageEvent

    bridge.descriptions = CLAUDE_CODE_5X
    started = session_start(pro_client)
    record = request_record(started["sessionId"], "turn-1", at=minutes_ago(0.5), write_5m=5000, modelId="haiku")
    record.update(model=None, source="acp_turn")

    assert signed_post(anon_client, sandbox_id="static", key=bridge.token, records=[record]).status_code == 202

    assert UsageEvent.objects.get(session_key=started["sessionKey"]).model == "claude-haiku-5-5"


def test_the_map_read_from_claude_code_model_options():
    from django.utils import timezone

    from sessions_app.model_truth import model_map_from_offer

    # As @agentclientprotocol/claude-agent-acp 0.100.0 offers them.
    offer = [
        {"modelId": "default", "name": "Default (recommended)", "description": "Opus"},
        {"modelId": "opus", "name": "Opus 5.5", "description": "Opus 5.5 · Best for everyday, complex tasks"},
        {"modelId": "sonnet", "name": "Sonnet 5.5", "description": "Sonnet 5.5 · Efficient for routine tasks"},
        {"modelId": "haiku", "name": "Haiku 5.5", "description": "Haiku 5.5 · Fastest for quick answers"},
        {"modelId": "gizmo", "name": "Gizmo 9", "description": "Not a model the catalog knows"},
    ]

    found = model_map_from_offer(available_models=offer, at=timezone.now())

    assert {k: v["apiModel"] for k, v in found.items()} == {
        "default": "claude-opus-5-5",
        "opus": "claude-opus-5-5",
        "sonnet": "claude-sonnet-5-5",
        "haiku": "claude-haiku-5-5",
    }
    assert {v["source"] for v in found.values()} == {"offer"}


def test_a_usage_entry_is_never_replaced_by_an_offer():
    from sessions_app.model_truth import model_map_merge

    current = {"haiku": {"apiModel": "claude-haiku-5-5", "source": "usage", "at": "2026-11-26T08:00:00Z"}}
    offered = {
        "haiku": {"apiModel": "claude-haiku-4-5", "source": "offer", "at": "2026-11-26T09:00:00Z"},
        "sonnet": {"apiModel": "claude-sonnet-5-5", "source": "offer", "at": "2026-11-26T09:00:00Z"},
    }

    merged = model_map_merge(current, offered)

    assert merged == {"haiku": current["haiku"], "sonnet": offered["sonnet"]}


def test_a_lease_left_to_expire_puts_the_model_in_doubt(pro_client, bridge):
    from datetime import timedelta

    from django.utils import timezone

    from sessions_app.leases import session_lease_take

    started = session_start(pro_client)
    key, acp_id = started["sessionKey"], started["sessionId"]
    session = AgentSession.objects.get(key=key)
    # A switch's holder dies during its bridge call, after the agent applied the switch.
    session_lease_take(user=session.user, key=key, now=timezone.now())
    bridge.sessions[acp_id] = "sonnet"
    AgentSession.objects.filter(key=key).update(lease_expires_at=timezone.now() - timedelta(seconds=1))

    quote = _quote(pro_client, key, "opus")

    assert quote.status_code == 200 and quote.json()["quote"]["fromModelId"] == "sonnet"
    session = AgentSession.objects.get(key=key)
    assert (session.model_id, session.model_unverified, session.lease_token) == ("sonnet", False, None)
    assert _ledger(key) == [("haiku", "sonnet", "reconciled")]


def test_a_model_id_nobody_can_price_never_becomes_the_sessions_model(pro_client, anon_client, bridge):
    started = session_start(pro_client)
    key, acp_id = started["sessionKey"], started["sessionId"]
    record = request_record(acp_id, "req_1", at=minutes_ago(0.1), model="claude-haiku-4-5", modelId="gizmo-9000")

    assert signed_post(anon_client, sandbox_id="static", key=bridge.token, records=[record]).status_code == 202

    assert AgentSession.objects.get(key=key).model_id == "haiku"
    assert _quote(pro_client, key, "sonnet").status_code == 200
    assert _ledger(key) == []
