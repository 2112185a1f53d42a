"""POST /api/internal/usage: signed, idempotent, all-or-nothing."""

from decimal import Decimal

import pytest

from billing.models import RateLimitEvent, SessionCacheState, UsageEvent
from tests.sessions_app.relay import minutes_ago, request_record, signed_post

pytestmark = pytest.mark.django_db


@pytest.fixture
def session(pro_client, bridge):
    return pro_client.post("/api/chat/sessions", format="json").json()


def _post(client, bridge, records, **kwargs):
    return signed_post(client, sandbox_id="static", key=bridge.token, records=records, **kwargs)


def test_batch_is_stored_priced_and_fed_to_the_tracker(anon_client, bridge, session):
    records = [
        request_record(session["sessionId"], "req_1", at=minutes_ago(2), input_tokens=10, write_5m=20_000, output=500),
        request_record(
            session["sessionId"], "req_2", at=minutes_ago(1), input_tokens=5, write_5m=600, read=20_000, output=300
        ),
    ]
    response = _post(anon_client, bridge, records)

    assert response.status_code == 202, response.json()
    assert response.json() == {"accepted": 2, "duplicates": 0}
    first, second = UsageEvent.objects.order_by("occurred_at")
    # Haiku 4.5: $1 in, $1.25 5m write, $0.10 read, $5 out per MTok.
    assert first.cost_usd == Decimal("0.027510")  # 10*1 + 20000*1.25 + 500*5 = 27510 micro-dollars
    assert second.cost_usd == Decimal("0.004255")  # 5*1 + 600*1.25 + 20000*0.1 + 300*5
    assert first.miss_cause == "first_turn" and second.miss_cause == ""
    assert second.predicted_read_tokens == 20_000
    assert first.price_version.label.startswith("claude-haiku-4-5@")
    state = SessionCacheState.objects.get(session_key=session["sessionKey"])
    assert state.context_tokens == 5 + 600 + 20_000 + 300


def test_retried_batch_changes_nothing(anon_client, bridge, session):
    records = [request_record(session["sessionId"], "req_1", at=minutes_ago(1), write_5m=5000, output=10)]
    assert _post(anon_client, bridge, records).status_code == 202
    again = _post(anon_client, bridge, records)
    assert again.status_code == 202
    assert again.json() == {"accepted": 0, "duplicates": 1}
    assert UsageEvent.objects.count() == 1


def test_reused_nonce_is_409(anon_client, bridge, session):
    import secrets

    # Nonces live in the shared cache (Redis in CI) beyond one run: a fresh one per run.
    nonce = secrets.token_hex(16)
    records = [request_record(session["sessionId"], "req_1", at=minutes_ago(1), write_5m=5000)]
    assert _post(anon_client, bridge, records, nonce=nonce).status_code == 202
    replay = _post(anon_client, bridge, records, nonce=nonce)
    assert replay.status_code == 409
    assert replay.json()["code"] == "nonce_reused"


# Whole seconds on the wire: a margin of ten keeps the sub-second truncation from mattering.
@pytest.mark.parametrize("offset", [-310, 310])
def test_timestamp_outside_the_window_is_401(anon_client, bridge, session, offset):
    import time

    records = [request_record(session["sessionId"], "req_1", at=minutes_ago(1), write_5m=5000)]
    response = _post(anon_client, bridge, records, timestamp=int(time.time()) + offset)
    assert response.status_code == 401
    assert response.json()["code"] == "stale_timestamp"
    assert not UsageEvent.objects.exists()


def test_wrong_key_unknown_sandbox_and_unsigned_are_401(anon_client, bridge, session):
    records = [request_record(session["sessionId"], "req_1", at=minutes_ago(1), write_5m=5000)]
    wrong_key = signed_post(anon_client, sandbox_id="static", key="not-the-token", records=records)
    unknown = signed_post(anon_client, sandbox_id="sbx_nope", key=bridge.token, records=records)
    unsigned = anon_client.post(
        "/api/internal/usage", {"records": records}, format="json", HTTP_X_MK0R_SANDBOX="static"
    )
    assert [r.status_code for r in (wrong_key, unknown, unsigned)] == [401, 401, 401]
    assert wrong_key.json()["code"] == unknown.json()["code"] == "bad_signature"
    assert unsigned.json()["code"] == "missing_signature"
    assert not UsageEvent.objects.exists()


def test_body_tampered_after_signing_is_401(anon_client, bridge, session):
    import json
    import time

    from sessions_app.relay_auth import relay_signature

    records = [request_record(session["sessionId"], "req_1", at=minutes_ago(1), write_5m=5000)]
    signed = json.dumps({"sandboxId": "static", "records": records}).encode()
    now = str(int(time.time()))
    response = anon_client.generic(
        "POST",
        "/api/internal/usage",
        signed.replace(b"5000", b"1"),
        content_type="application/json",
        HTTP_X_MK0R_SANDBOX="static",
        HTTP_X_MK0R_TIMESTAMP=now,
        HTTP_X_MK0R_NONCE="n" * 16,
        HTTP_X_MK0R_SIGNATURE=relay_signature(key=bridge.token, timestamp=now, nonce="n" * 16, body=signed),
    )
    assert response.status_code == 401
    assert response.json()["code"] == "bad_signature"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda r: r["usage"].update(input_tokens=-1), "usage.input_tokens"),
        (lambda r: r["usage"].update(output_tokens="12"), "usage.output_tokens"),
        (lambda r: r.update(timestamp="yesterday"), "timestamp"),
        (lambda r: r.update(model="gpt-5", modelId=None), "unknown model"),
        (lambda r: r.update(kind="mystery"), "kind"),
        (lambda r: r.update(id=""), "id"),
    ],
)
def test_one_bad_record_rejects_the_whole_batch(anon_client, bridge, session, mutate, reason):
    good = request_record(session["sessionId"], "req_ok", at=minutes_ago(2), write_5m=5000)
    bad = request_record(session["sessionId"], "req_bad", at=minutes_ago(1), write_5m=5000)
    mutate(bad)
    response = _post(anon_client, bridge, [good, bad])
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_usage_record" and body["extra"]["index"] == 1 and reason in body["message"]
    assert not UsageEvent.objects.exists() and not SessionCacheState.objects.exists()


def test_late_usage_of_an_acp_session_a_resume_replaced_still_counts(pro_client, anon_client, bridge, session):
    resumed = pro_client.post(
        f"/api/chat/sessions/{session['sessionKey']}/resume", {"force": True}, format="json"
    ).json()
    assert resumed["sessionId"] != session["sessionId"]
    records = [
        request_record(session["sessionId"], "req_before", at=minutes_ago(2), write_5m=5000, output=10),
        request_record(resumed["sessionId"], "req_after", at=minutes_ago(1), write_5m=6000, output=10),
    ]

    response = _post(anon_client, bridge, records)

    assert response.status_code == 202, response.json()
    assert response.json() == {"accepted": 2, "duplicates": 0}
    assert set(UsageEvent.objects.values_list("session_key", flat=True)) == {session["sessionKey"]}


def test_record_for_a_session_of_another_sandbox_is_409(anon_client, bridge, session):
    records = [request_record("acp-unknown", "req_1", at=minutes_ago(1), write_5m=5000)]
    response = _post(anon_client, bridge, records)
    assert response.status_code == 409
    assert response.json()["code"] == "unknown_session"


def test_rate_limit_events_accept_seconds_and_milliseconds(anon_client, bridge, session):
    records = [
        {
            "id": "rl-1",
            "kind": "rate_limit",
            "sessionId": session["sessionId"],
            "timestamp": "2026-11-22T10:00:00Z",
            "rateLimitType": "weekly",
            "resetsAt": 1795000000,
            "utilization": 0.42,
        },
        {
            "id": "rl-2",
            "kind": "rate_limit",
            "sessionId": session["sessionId"],
            "timestamp": "2026-11-22T10:05:00Z",
            "rateLimitType": "weekly",
            "resetsAt": 1795000000000,
            "utilization": 43,
        },
    ]
    assert _post(anon_client, bridge, records).status_code == 202
    first, second = RateLimitEvent.objects.order_by("occurred_at")
    assert first.resets_at == second.resets_at
    assert first.resets_at.year == 2026
    assert (first.utilization, second.utilization) == (Decimal("0.42"), Decimal("43"))


def test_acp_turn_records_use_the_sessions_ttl(anon_client, bridge, session):
    record = {
        "id": f"{session['sessionId']}:turn:1",
        "kind": "request",
        "source": "acp_turn",
        "sessionId": session["sessionId"],
        "modelId": "haiku",
        "timestamp": "2026-11-22T10:00:00Z",
        "usage": {"inputTokens": 10, "outputTokens": 20, "cachedReadTokens": 0, "cachedWriteTokens": 5000},
    }
    assert _post(anon_client, bridge, [record]).status_code == 202
    event = UsageEvent.objects.get()
    assert (event.model, event.cache_write_5m_tokens, event.cache_write_1h_tokens) == ("claude-haiku-4-5", 5000, 0)


def test_a_batch_costs_the_same_queries_whatever_its_size(anon_client, bridge, session):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = {}
    for size, first in ((1, 0), (100, 1)):
        records = [
            request_record(
                session["sessionId"],
                f"req_{first + i}",
                at=minutes_ago(2 - (first + i) / 200),
                write_5m=5000 + i,
                output=10,
            )
            for i in range(size)
        ]
        with CaptureQueriesContext(connection) as queries:
            response = _post(anon_client, bridge, records)
        assert response.status_code == 202 and response.json()["accepted"] == size
        counts[size] = len(queries)
    assert UsageEvent.objects.count() == 101
    # Never a query per record: a hundred records cost what one does, give or take an insert batch.
    assert counts[100] <= counts[1] + 2, counts
