"""GET /api/chat/sessions/{key}/cache-health, /api/billing/cache-health, /api/billing/quote-accuracy."""

import io
import json
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from tests.conftest import client_for
from tests.sessions_app.relay import request_record, signed_post

pytestmark = pytest.mark.django_db


def _session(client, bridge, *, prefix=100_000) -> dict:
    """A session whose first turn on haiku cached `prefix` tokens 30 seconds ago."""
    session = client.post("/api/chat/sessions", format="json").json()
    first = request_record(
        session["sessionId"],
        "req_first",
        at=timezone.now() - timedelta(seconds=30),
        write_5m=prefix,
        output=500,
    )
    assert signed_post(client, sandbox_id="static", key=bridge.token, records=[first]).status_code == 202
    return session


def _switch(client, key, model_id):
    quote = client.post("/api/chat/model/quote", {"sessionKey": key, "modelId": model_id}, format="json").json()
    response = client.post(
        "/api/chat/model", {"sessionKey": key, "modelId": model_id, "quoteId": quote["quote"]["id"]}, format="json"
    )
    assert response.status_code == 200, response.json()


def _turn(client, bridge, session, record_id, *, seconds, model, **tokens):
    record = request_record(
        session["sessionId"], record_id, at=timezone.now() + timedelta(seconds=seconds), model=model, **tokens
    )
    assert signed_post(client, sandbox_id="static", key=bridge.token, records=[record]).status_code == 202


def _is_error(response, status, code):
    body = response.json()
    return response.status_code == status and body["code"] == code and {"message", "extra"} <= set(body)


def test_live_session_health_with_flapping_from_the_ledger(pro_client, bridge):
    session = _session(pro_client, bridge)
    key = session["sessionKey"]
    _turn(pro_client, bridge, session, "req_2", seconds=-20, model="claude-haiku-4-5", write_5m=600, read=100_000)
    _switch(pro_client, key, "sonnet")
    _switch(pro_client, key, "haiku")  # straight back: flapping

    response = pro_client.get(f"/api/chat/sessions/{key}/cache-health")

    assert response.status_code == 200
    body = response.json()
    assert body["sessionKey"] == key and body["requests"] == 2 and body["eligibleRequests"] == 1
    assert body["hitRate"] == round(100_000 / 100_600, 4) and body["healthy"] is True
    assert body["missCauses"] == {"first_turn": 1}
    assert body["flapping"]["count"] == 1
    (flap,) = body["flapping"]["events"]
    assert flap["models"] == ["haiku", "sonnet"] and flap["source"] == "ledger"


def test_session_health_of_another_user_is_404(pro_client, bridge):
    session = _session(pro_client, bridge)
    stranger = client_for("stranger", "pro")
    response = stranger.get(f"/api/chat/sessions/{session['sessionKey']}/cache-health")
    assert _is_error(response, 404, "session_not_found")
    assert _is_error(stranger.get(f"/api/chat/sessions/{uuid.uuid4()}/cache-health"), 404, "session_not_found")
    assert _is_error(stranger.get("/api/chat/sessions/not-a-key/cache-health"), 404, "not_found")


def test_imported_claude_code_session_has_health_too(pro_client, tmp_path):
    claude_session = "8b0db7b7-d213-4a9a-899e-554aaca9f294"
    t0 = timezone.now() - timedelta(hours=1)
    lines = []
    for i, (model, w1, read) in enumerate(
        [("claude-haiku-4-5", 20_000, 0), ("claude-sonnet-4-6", 20_500, 0), ("claude-haiku-4-5", 800, 20_000)]
    ):
        usage = {
            "input_tokens": 3,
            "cache_creation_input_tokens": w1,
            "cache_read_input_tokens": read,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": w1},
            "output_tokens": 100,
        }
        lines.append(
            {
                "type": "assistant",
                "timestamp": (t0 + timedelta(minutes=i)).isoformat().replace("+00:00", "Z"),
                "sessionId": claude_session,
                "requestId": f"req_{i}",
                "isSidechain": False,
                "message": {"id": f"msg_{i}", "model": model, "usage": usage},
            }
        )
    (tmp_path / f"{claude_session}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    call_command("import_claude_logs", str(tmp_path), "--user", pro_client.user.username, stdout=io.StringIO())

    body = pro_client.get(f"/api/chat/sessions/{claude_session}/cache-health").json()

    assert body["requests"] == 3 and body["flapping"]["count"] == 1
    assert body["flapping"]["events"][0]["source"] == "models"
    mine = pro_client.get("/api/billing/cache-health").json()
    assert mine["sessionCount"] == 1 and mine["sessions"][0]["sessionKey"] == claude_session
    assert mine["flapping"] == {"count": 1, "sessions": 1}


def test_user_health_defaults_to_seven_days_and_validates_days(pro_client, bridge):
    _session(pro_client, bridge)
    body = pro_client.get("/api/billing/cache-health").json()
    assert body["days"] == 7 and body["requests"] == 1 and body["sessionCount"] == 1
    assert pro_client.get("/api/billing/cache-health?days=30").json()["days"] == 30
    for bad in ("0", "366", "abc"):
        response = pro_client.get(f"/api/billing/cache-health?days={bad}")
        assert _is_error(response, 400, "invalid_request"), response.json()
        assert "days" in response.json()["message"]


def test_health_endpoints_need_a_user(anon_client):
    for url in (
        "/api/billing/cache-health",
        "/api/billing/quote-accuracy",
        f"/api/chat/sessions/{uuid.uuid4()}/cache-health",
    ):
        assert _is_error(anon_client.get(url), 401, "not_authenticated")


def test_quote_accuracy_over_reconciled_switches(pro_client, bridge):
    empty = pro_client.get("/api/billing/quote-accuracy").json()
    assert empty["count"] == 0 and empty["errorUsd"] is None and empty["worst"] == []

    exact = _session(pro_client, bridge)
    _switch(pro_client, exact["sessionKey"], "opus")
    # Opus rewrites exactly the quoted 100k (+ the 500-token reply): the quote was right.
    _turn(pro_client, bridge, exact, "req_opus", seconds=1, model="claude-opus-4-6", write_5m=100_500)
    off = _session(pro_client, bridge)
    _switch(pro_client, off["sessionKey"], "opus")
    # Here the next prompt was 20k longer than the conversation: the quote undershot.
    _turn(pro_client, bridge, off, "req_opus2", seconds=1, model="claude-opus-4-6", write_5m=120_500)

    body = pro_client.get("/api/billing/quote-accuracy").json()

    assert body["count"] == 2
    errors = sorted(Decimal(w["errorUsd"]) for w in body["worst"])
    assert errors[0] == 0 and errors[1] > 0
    assert body["worst"][0]["sessionKey"] == off["sessionKey"]
    assert Decimal(body["errorUsd"]["p90"]) == errors[1] and Decimal(body["errorUsd"]["p50"]) == 0
    assert Decimal(body["errorUsd"]["mean"]) == (errors[1] / 2).quantize(Decimal("0.000001"))
    assert body["errorPercent"]["count"] == 2 and Decimal(body["errorPercent"]["p50"]) == 0
    assert pro_client.get("/api/billing/quote-accuracy?worst=1").json()["worst"][0]["errorUsd"] == str(errors[1])
    assert _is_error(pro_client.get("/api/billing/quote-accuracy?days=-1"), 400, "invalid_request")
    # Someone else's switches are not mine.
    assert client_for("stranger", "pro").get("/api/billing/quote-accuracy").json()["count"] == 0


def test_session_health_says_what_the_session_has_cost_so_far(pro_client, bridge):
    """The running cost the picker shows: every request as billed. Haiku 4.5 list prices, USD per
    MTok: input 1, 5-minute write 1.25, read 0.10, output 5."""
    session = _session(pro_client, bridge)  # 100,000 written, 500 out
    key = session["sessionKey"]
    first = Decimal("100000") * Decimal("1.25") / 10**6 + Decimal("500") * 5 / 10**6
    assert pro_client.get(f"/api/chat/sessions/{key}/cache-health").json()["costUsd"] == f"{first:.6f}"

    _turn(pro_client, bridge, session, "req_2", seconds=-20, model="claude-haiku-4-5", write_5m=600, read=100_000)

    second = Decimal("600") * Decimal("1.25") / 10**6 + Decimal("100000") * Decimal("0.10") / 10**6
    assert pro_client.get(f"/api/chat/sessions/{key}/cache-health").json()["costUsd"] == f"{first + second:.6f}"
    assert pro_client.get("/api/billing/cache-health").json()["costUsd"] == f"{first + second:.6f}"
