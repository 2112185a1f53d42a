"""POST /api/internal/usage with a valid signature and malformed records: a 400 naming the
record and the field, and nothing written (run on PostgreSQL, where these once were 500s)."""

import json

import pytest

from billing.models import RateLimitEvent, SessionCacheState, UsageEvent
from tests.sessions_app.relay import minutes_ago, request_record, signed_post

pytestmark = pytest.mark.django_db

BAD_TEXT = {"NUL": "a\x00b", "lone surrogate": "a\ud800b"}


@pytest.fixture
def session(pro_client, bridge):
    return pro_client.post("/api/chat/sessions", format="json").json()


def _rate_limit(session_id: str) -> dict:
    return {
        "id": f"{session_id}:rl:1795000000:weekly:0.42",
        "kind": "rate_limit",
        "sessionId": session_id,
        "timestamp": "2026-11-22T10:00:00Z",
        "rateLimitType": "weekly",
        "resetsAt": 1795000000,
        "utilization": 0.42,
    }


def _set(path: str, value):
    def mutate(record: dict) -> None:
        *parents, leaf = path.split(".")
        target = record
        for key in parents:
            target = target[key]
        target[leaf] = value

    return mutate


# (kind of the bad record, mutation, the field the 400 must name)
CASES = {
    "impossible date": ("request", _set("timestamp", "2026-02-30T00:00:00Z"), "timestamp"),
    "offset past a day": ("request", _set("timestamp", "2026-11-22T10:00:00+99:00"), "timestamp"),
    "year 9999": ("request", _set("timestamp", "9999-12-31T23:59:59Z"), "timestamp"),
    "utilization 'NaN'": ("rate_limit", _set("utilization", "NaN"), "utilization"),
    "utilization 'sNaN'": ("rate_limit", _set("utilization", "sNaN"), "utilization"),
    "utilization 'Infinity'": ("rate_limit", _set("utilization", "Infinity"), "utilization"),
    "utilization bare NaN": ("rate_limit", _set("utilization", float("nan")), "utilization"),
    "utilization 1e400": ("rate_limit", _set("utilization", float("inf")), "utilization"),
    "utilization a list": ("rate_limit", _set("utilization", [1]), "utilization"),
    "rateLimitType of 33 characters": ("rate_limit", _set("rateLimitType", "w" * 33), "rateLimitType"),
    "resetsAt 1e300": ("rate_limit", _set("resetsAt", 1e300), "resetsAt"),
    "resetsAt bare Infinity": ("rate_limit", _set("resetsAt", float("inf")), "resetsAt"),
    "resetsAt impossible date": ("rate_limit", _set("resetsAt", "2026-02-30T00:00:00Z"), "resetsAt"),
    "input_tokens 2**63": ("request", _set("usage.input_tokens", 2**63), "usage.input_tokens"),
    "input_tokens 10**15": ("request", _set("usage.input_tokens", 10**15), "usage.input_tokens"),
    "output_tokens bare NaN": ("request", _set("usage.output_tokens", float("nan")), "usage.output_tokens"),
    "cachedReadTokens 2**64": ("request", _set("usage.cachedReadTokens", 2**64), "usage.cachedReadTokens"),
    "cache_creation 'x'": ("request", _set("usage.cache_creation", "x"), "usage.cache_creation"),
    "cache_creation negative": (
        "request",
        _set("usage.cache_creation.ephemeral_5m_input_tokens", -1),
        "usage.cache_creation.ephemeral_5m_input_tokens",
    ),
    "service_tier an object": ("request", _set("usage.service_tier", {"a": 1}), "usage.service_tier"),
    "sessionId a list": ("request", _set("sessionId", ["acp"]), "sessionId"),
    "sessionId an object": ("request", _set("sessionId", {"id": "acp"}), "sessionId"),
    "turn a string": ("request", _set("turn", "7"), "turn"),
    "turn 0": ("request", _set("turn", 0), "turn"),
    "isSidechain a string": ("request", _set("isSidechain", "no"), "isSidechain"),
    "source unknown": ("request", _set("source", "mystery"), "source"),
    "requestId of 101 characters": ("request", _set("requestId", "r" * 101), "requestId"),
    "diagnostics a list": ("request", _set("diagnostics", ["model_changed"]), "diagnostics"),
    "diagnostics reason a list": (
        "request",
        _set("diagnostics", {"cache_miss_reason": ["model_changed"]}),
        "diagnostics.cache_miss_reason",
    ),
    "diagnostics too deep": ("request", _set("diagnostics", {"a": {"b": {"c": {"d": {"e": {}}}}}}), "diagnostics"),
    "diagnostics bare NaN": ("request", _set("diagnostics", {"score": float("nan")}), "diagnostics"),
}
for label, text in BAD_TEXT.items():
    CASES[f"{label} in id"] = ("request", _set("id", f"req_{text}"), "id")
    CASES[f"{label} in model"] = ("request", _set("model", f"claude-haiku-4-5{text}"), "model")
    CASES[f"{label} in rateLimitType"] = ("rate_limit", _set("rateLimitType", f"weekly{text}"), "rateLimitType")
    CASES[f"{label} in a diagnostics value"] = (
        "request",
        _set("diagnostics", {"cache_miss_reason": text}),
        "diagnostics",
    )
    CASES[f"{label} in a diagnostics key"] = ("request", _set("diagnostics", {text: "x"}), "diagnostics")
    CASES[f"{label} in sessionId"] = ("request", _set("sessionId", text), "sessionId")


@pytest.mark.parametrize(("kind", "mutate", "field"), CASES.values(), ids=CASES.keys())
def test_malformed_record_is_a_400_naming_index_and_field_and_nothing_is_written(
    anon_client, bridge, session, kind, mutate, field
):
    sid = session["sessionId"]
    good = [
        request_record(sid, "req_ok", at=minutes_ago(3), write_5m=5000, output=10, turn=1),
        _rate_limit(sid) | {"id": "rl-ok"},
    ]
    bad = request_record(sid, "req_bad", at=minutes_ago(2), write_5m=600, read=5000, turn=2)
    bad |= {"diagnostics": {"cache_miss_reason": "model_changed"}}
    if kind == "rate_limit":
        bad = _rate_limit(sid)
    mutate(bad)
    # allow_nan: NaN and Infinity go out as the bare literals a JSON parser accepts by default.
    body = json.dumps({"sandboxId": "static", "records": [*good, bad]}, allow_nan=True).encode()

    response = signed_post(anon_client, sandbox_id="static", key=bridge.token, records=[], body=body)

    assert response.status_code == 400, response.content
    answer = response.json()
    assert answer["code"] == "invalid_usage_record"
    assert answer["extra"]["index"] == 2 and answer["extra"]["field"] == field
    assert answer["message"].startswith(f"Record 2: {field} ")
    assert not UsageEvent.objects.exists()
    assert not RateLimitEvent.objects.exists()
    assert not SessionCacheState.objects.exists()


def test_the_limits_themselves_are_accepted(anon_client, bridge, session):
    from billing.usage.validation import MAX_TOKENS

    sid = session["sessionId"]
    records = [
        request_record(sid, "req_max", at=minutes_ago(2), input_tokens=MAX_TOKENS, output=MAX_TOKENS, turn=10**9),
        _rate_limit(sid) | {"rateLimitType": "w" * 32, "utilization": 100, "resetsAt": "2026-11-29T00:00:00Z"},
    ]
    response = signed_post(anon_client, sandbox_id="static", key=bridge.token, records=records)
    assert response.status_code == 202, response.json()
    event = UsageEvent.objects.get()
    assert event.input_tokens == event.output_tokens == MAX_TOKENS
    assert event.turn_key == f"{sid}:turn:{10**9}"
    assert RateLimitEvent.objects.get().rate_limit_type == "w" * 32


@pytest.mark.parametrize("depth", [1_000, 1_500, 10_000])
def test_deeply_nested_json_is_a_400(anon_client, bridge, session, depth):
    body = b'{"sandboxId":"static","records":[{"diagnostics":' + b"[" * depth + b"]" * depth + b"}]}"
    response = signed_post(anon_client, sandbox_id="static", key=bridge.token, records=[], body=body)
    assert response.status_code == 400, response.content
    assert response.json()["code"] in ("invalid_request", "invalid_usage_record")
    assert not UsageEvent.objects.exists()


@pytest.mark.parametrize("body", [b"\xff\xfe not utf-8", b'{"records": [', b"[]", b'"records"', b"1e999"], ids=repr)
def test_a_body_that_is_not_a_json_object_is_a_400(anon_client, bridge, session, body):
    response = signed_post(anon_client, sandbox_id="static", key=bridge.token, records=[], body=body)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_request"


def test_unknown_session_names_its_record(anon_client, bridge, session):
    records = [
        request_record(session["sessionId"], "req_ok", at=minutes_ago(2), write_5m=5000),
        request_record("acp-unknown", "req_1", at=minutes_ago(1), write_5m=5000),
    ]
    response = signed_post(anon_client, sandbox_id="static", key=bridge.token, records=records)
    assert response.status_code == 409
    assert response.json()["extra"] == {"index": 1, "field": "sessionId"}
    assert not UsageEvent.objects.exists()


def test_a_signature_header_with_non_ascii_characters_is_a_401(anon_client, bridge, session):
    import time

    body = json.dumps({"sandboxId": "static", "records": []}).encode()
    response = anon_client.generic(
        "POST",
        "/api/internal/usage",
        body,
        content_type="application/json",
        HTTP_X_MK0R_SANDBOX="static",
        HTTP_X_MK0R_TIMESTAMP=str(int(time.time())),
        HTTP_X_MK0R_NONCE="n" * 32,
        HTTP_X_MK0R_SIGNATURE="sha256=\u00e9",
    )
    assert response.status_code == 401


def test_a_sandbox_header_with_nul_is_a_401(anon_client, bridge, session):
    records = [request_record(session["sessionId"], "req_1", at=minutes_ago(1), write_5m=5000)]
    response = signed_post(anon_client, sandbox_id="sta\x00tic", key=bridge.token, records=records)
    assert response.status_code == 401
    assert response.json()["code"] == "bad_signature"
