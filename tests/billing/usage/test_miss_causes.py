"""A miss's cause, with Anthropic's cache diagnostics as the API sends them
(`diagnostics.cache_miss_reason: {type, cache_missed_input_tokens}`, or null while pending)."""

from datetime import UTC, datetime, timedelta

import pytest

from billing.catalog.cost_engine import Usage
from billing.catalog.price_snapshots import prices_from_version
from billing.catalog.selectors import price_version_for
from billing.models import MissCause, UsageEvent
from billing.quotes.cache_tracker import CacheTracker
from billing.usage.cache_health import session_cache_health
from billing.usage.ingestion import miss_cause
from billing.usage.validation import diagnosed_miss_reason
from tests.sessions_app.relay import minutes_ago, request_record, signed_post

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 12, 10, 0, tzinfo=UTC)
HAIKU, SONNET = "claude-haiku-4-5", "claude-sonnet-4-6"
NOT_FOUND = {"cache_miss_reason": {"type": "previous_message_not_found"}}


def _cause(*, after: timedelta, diagnostics, model=HAIKU) -> tuple[str, int]:
    """The cause of a request that reads nothing, `after` a first one cached 20,000 tokens on Haiku."""
    tracker = CacheTracker()
    tracker.record(model=HAIKU, usage=Usage(cache_write_5m_tokens=20_000), at=T0)
    at = T0 + after
    return miss_cause(
        before=tracker.snapshot(),
        model=model,
        usage=Usage(input_tokens=10, cache_write_5m_tokens=20_500),
        at=at,
        prices=prices_from_version(price_version_for(api_model=model, at=at)),
        diagnostics=diagnostics,
    )


def test_the_reason_is_the_type_of_the_apis_object():
    assert diagnosed_miss_reason({"cache_miss_reason": {"type": "tools_changed", "cache_missed_input_tokens": 9}}) == (
        "tools_changed"
    )
    assert diagnosed_miss_reason({"cache_miss_reason": "model_changed"}) == "model_changed"
    assert diagnosed_miss_reason({"cache_miss_reason": None}) is None  # diagnosis still pending
    assert diagnosed_miss_reason(None) is None


def test_a_diagnosed_change_names_the_cause():
    diagnostics = {"cache_miss_reason": {"type": "tools_changed", "cache_missed_input_tokens": 20_000}}
    assert _cause(after=timedelta(minutes=1), diagnostics=diagnostics) == (MissCause.PREFIX_CHANGED, 20_000)


def test_an_unknown_previous_request_while_the_cache_is_warm_is_a_rotation():
    # Same model, inside the 5-minute TTL: the prefix is cached where the previous request went.
    assert _cause(after=timedelta(minutes=1), diagnostics=NOT_FOUND) == (MissCause.ROTATION, 20_000)


def test_an_unknown_previous_request_after_the_ttl_is_the_ttl():
    assert _cause(after=timedelta(minutes=10), diagnostics=NOT_FOUND) == (MissCause.TTL_EXPIRED, 0)
    assert _cause(after=timedelta(minutes=1), diagnostics=NOT_FOUND, model=SONNET)[0] == MissCause.MODEL_SWITCH


def test_without_diagnostics_a_warm_miss_is_a_changed_prefix():
    assert _cause(after=timedelta(minutes=1), diagnostics=None) == (MissCause.PREFIX_CHANGED, 20_000)


def test_the_relay_accepts_the_apis_diagnostics_and_stores_the_cause(pro_client, bridge):
    session = pro_client.post("/api/chat/sessions", format="json").json()
    sid = session["sessionId"]
    records = [
        request_record(sid, "req_1", at=minutes_ago(3), write_5m=20_000),
        request_record(sid, "req_2", at=minutes_ago(2), write_5m=20_500, diagnostics=NOT_FOUND),
        request_record(
            sid, "req_3", at=minutes_ago(1), read=20_500, write_5m=300, diagnostics={"cache_miss_reason": None}
        ),
    ]
    response = signed_post(pro_client, sandbox_id="static", key=bridge.token, records=records)
    assert response.status_code == 202, response.json()
    causes = dict(UsageEvent.objects.filter(session_key=session["sessionKey"]).values_list("record_id", "miss_cause"))
    assert causes == {"req_1": MissCause.FIRST_TURN, "req_2": MissCause.ROTATION, "req_3": ""}
    health = session_cache_health(user=pro_client.user, session_key=session["sessionKey"])
    assert health["diagnosedMissReasons"] == {"previous_message_not_found": 1}
    assert health["missCauses"] == {"first_turn": 1, "rotation": 1}


@pytest.mark.parametrize("reason", [["tools_changed"], {"cache_missed_input_tokens": 5}, {"type": 3}, 7])
def test_a_reason_of_another_shape_is_refused(pro_client, bridge, reason):
    session = pro_client.post("/api/chat/sessions", format="json").json()
    record = request_record(session["sessionId"], "req_1", at=minutes_ago(1), diagnostics={"cache_miss_reason": reason})
    response = signed_post(pro_client, sandbox_id="static", key=bridge.token, records=[record])
    assert response.status_code == 400
    assert response.json()["extra"]["field"] == "diagnostics.cache_miss_reason"
    assert not UsageEvent.objects.exists()
