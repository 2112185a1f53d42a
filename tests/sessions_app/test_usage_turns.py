"""A turn is billed once: its transcript records replace its acp_turn record, in either order.

The records are the bridge's own (vm_bridge.usage / vm_bridge.transcript), built from a real
Claude Code transcript (four Sonnet 4.6 requests with 1-hour cache writes), retimed to now.
"""

import json
import shutil
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from billing.models import SessionCacheState, SwitchReconciliation, UsageEvent
from billing.money import usd_quantize
from tests.sessions_app.api import session_start
from tests.sessions_app.relay import iso, signed_post
from vm_bridge.transcript import TranscriptReader, transcript_record
from vm_bridge.usage import acp_turn_record

LOGS = Path(__file__).resolve().parents[3] / "shared" / "data" / "claude-code-logs"
SAMPLE = "213md-my-profile-site__18cb2580-7eea-473b-b4a4-73a4a4ff8593.jsonl"
REQUEST_IDS = [
    "req_011CYh9izBUH4W8kr4Ggi16i",
    "req_011CYh9jsmHdw7RmoYj9b1gc",
    "req_011CYh9rL3krBgzxrXPvh2JF",
    "req_011CYh9rpcEABLzAP6nYJAwy",
]
# Sonnet 4.6 list prices, USD per MTok: input, 5m write, 1h write, read, output.
SONNET_46 = {"input": 3, "w5": Decimal("3.75"), "w1": 6, "read": Decimal("0.30"), "output": 15}

pytestmark = [pytest.mark.django_db, pytest.mark.skipif(not (LOGS / SAMPLE).exists(), reason="shared data missing")]


def _turn(tmp_path: Path, session_id: str, starts: datetime) -> tuple[dict, list[dict]]:
    """Turn 1 of `session_id` as the bridge reports it: the acp_turn stand-in and the transcript records."""
    lines = [json.loads(line) for line in (LOGS / SAMPLE).read_text().splitlines()]
    first = min(datetime.fromisoformat(x["timestamp"].replace("Z", "+00:00")) for x in lines if "timestamp" in x)
    for line in lines:
        if "timestamp" in line:
            at = datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00"))
            line["timestamp"] = iso(starts + (at - first))
    path = tmp_path / session_id / "projects" / "-app" / f"{session_id}.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    transcript = [
        transcript_record(session_id, "sonnet", line, turn=1)
        for line in TranscriptReader(tmp_path / session_id).read_new(session_id)
    ]
    assert [r["id"] for r in transcript] == REQUEST_IDS
    # claude-agent-acp's PromptResponse.usage: the turn's requests summed.
    total = {
        key: sum(r["usage"][field] for r in transcript)
        for key, field in (
            ("inputTokens", "input_tokens"),
            ("outputTokens", "output_tokens"),
            ("cachedReadTokens", "cache_read_input_tokens"),
            ("cachedWriteTokens", "cache_creation_input_tokens"),
        )
    }
    stand_in = acp_turn_record(session_id, 1, "sonnet", total)
    stand_in["timestamp"] = iso(max(datetime.fromisoformat(r["timestamp"][:-1] + "+00:00") for r in transcript))
    return stand_in, transcript


def _post(client, bridge, records) -> dict:
    response = signed_post(client, sandbox_id="static", key=bridge.token, records=records)
    assert response.status_code == 202, response.json()
    return response.json()


def _expected_cost(usage: dict) -> Decimal:
    split = usage["cache_creation"]
    micro = (
        usage["input_tokens"] * SONNET_46["input"]
        + split["ephemeral_5m_input_tokens"] * SONNET_46["w5"]
        + split["ephemeral_1h_input_tokens"] * SONNET_46["w1"]
        + usage["cache_read_input_tokens"] * SONNET_46["read"]
        + usage["output_tokens"] * SONNET_46["output"]
    )
    return usd_quantize(Decimal(micro) / 1_000_000)


def _state(session_key: str) -> dict:
    state = SessionCacheState.objects.get(session_key=session_key)
    return {
        "ttl": state.ttl_policy,
        "model": state.current_model,
        "context": state.context_tokens,
        "last": state.last_request_at,
        "seen": state.seen_models,
        "entries": sorted(state.entries.values_list("model", "prefix_tokens", "ttl", "expires_at")),
    }


def _events(session_key: str) -> list[tuple]:
    return list(
        UsageEvent.objects.filter(session_key=session_key)
        .order_by("occurred_at")
        .values_list("record_id", "source", "cost_usd", "predicted_read_tokens", "miss_cause", "turn_key")
    )


def _reconciled(session_key: str) -> tuple:
    [rec] = SwitchReconciliation.objects.filter(switch__session__key=session_key)
    event = UsageEvent.objects.get(pk=rec.usage_event_id)
    return event.record_id, rec.actual_input_usd, rec.counterfactual_stay_usd, rec.actual_tax_usd


@pytest.fixture
def sessions(pro_client, bridge):
    """Sessions of the sandbox, each switched haiku -> sonnet, then about to run one turn:
    `reference` only ever gets the transcript records; the others get the acp_turn too."""
    made = {name: session_start(pro_client) for name in ("reference", "replaced", "dropped", "together")}
    for session in made.values():
        switched = pro_client.post(
            "/api/chat/model", {"sessionKey": session["sessionKey"], "modelId": "sonnet"}, format="json"
        )
        assert switched.status_code == 200, switched.json()
    return made


@pytest.mark.parametrize("order", ["acp_turn first", "transcript first", "one batch"])
def test_each_request_is_billed_once_whatever_the_order(anon_client, bridge, sessions, tmp_path, order):
    starts = datetime.now(UTC) + timedelta(seconds=2)  # after the switches
    reference = sessions["reference"]
    _, transcript = _turn(tmp_path, reference["sessionId"], starts)
    _post(anon_client, bridge, transcript)

    session = sessions[{"acp_turn first": "replaced", "transcript first": "dropped", "one batch": "together"}[order]]
    key = session["sessionKey"]
    stand_in, transcript = _turn(tmp_path, session["sessionId"], starts)
    if order == "acp_turn first":
        assert _post(anon_client, bridge, [stand_in]) == {"accepted": 1, "duplicates": 0}
        # Until the transcript comes, the agent's total stands in: billed, and the switch reconciled on it.
        assert [e[1] for e in _events(key)] == ["acp_turn"]
        assert _reconciled(key)[0] == stand_in["id"]
        assert _post(anon_client, bridge, transcript) == {"accepted": 4, "duplicates": 0}
    elif order == "transcript first":
        assert _post(anon_client, bridge, transcript) == {"accepted": 4, "duplicates": 0}
        assert _post(anon_client, bridge, [stand_in]) == {"accepted": 0, "duplicates": 1}
    else:
        assert _post(anon_client, bridge, [stand_in, *transcript]) == {"accepted": 4, "duplicates": 1}

    events = _events(key)
    assert [e[0] for e in events] == REQUEST_IDS
    assert {e[1] for e in events} == {"transcript"}
    assert {e[5] for e in events} == {f"{session['sessionId']}:turn:1"}
    assert [e[2] for e in events] == [_expected_cost(r["usage"]) for r in transcript]
    # Nothing of the acp_turn is left behind: the same events, miss causes, cache state and
    # switch reconciliation as the session that never had it.
    ref_key = reference["sessionKey"]
    assert [e[2:5] for e in events] == [e[2:5] for e in _events(ref_key)]
    assert _state(key) == _state(ref_key)
    assert _reconciled(key) == _reconciled(ref_key)
    assert _reconciled(key)[0] == REQUEST_IDS[0]

    # Retries of either batch change nothing.
    assert _post(anon_client, bridge, [stand_in]) == {"accepted": 0, "duplicates": 1}
    assert _post(anon_client, bridge, transcript) == {"accepted": 0, "duplicates": 4}
    assert _events(key) == events
    assert _state(key) == _state(ref_key)
    assert SwitchReconciliation.objects.filter(switch__session__key=key).count() == 1


def test_an_acp_turn_without_transcript_records_stays_billed(anon_client, bridge, sessions, tmp_path):
    session = sessions["replaced"]
    stand_in, transcript = _turn(tmp_path, session["sessionId"], datetime.now(UTC) + timedelta(seconds=2))
    other_turn = [dict(r, turn=2) for r in transcript]
    _post(anon_client, bridge, [stand_in])
    _post(anon_client, bridge, other_turn)  # another turn's transcript replaces nothing of turn 1
    assert [e[1] for e in _events(session["sessionKey"])].count("acp_turn") == 1
    assert len(_events(session["sessionKey"])) == 5


def test_the_sample_turn_is_what_the_test_says(tmp_path):
    # Guards the fixture: four requests, each counted from its fullest line, 1-hour writes only.
    lines = TranscriptReader(_copy(tmp_path)).read_new("s")
    assert [line["requestId"] for line in lines] == REQUEST_IDS
    assert [line["message"]["usage"]["output_tokens"] for line in lines] == [249, 137, 143, 88]


def _copy(tmp_path: Path) -> Path:
    dest = tmp_path / "projects" / "-app" / "s.jsonl"
    dest.parent.mkdir(parents=True)
    shutil.copy(LOGS / SAMPLE, dest)
    return tmp_path
