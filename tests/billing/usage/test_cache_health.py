"""Cache health selectors: the §7 hit rate over eligible requests, causes, diagnostics, flapping."""

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from billing.catalog.selectors import price_version_for
from billing.models import UsageEvent
from billing.usage.cache_health import session_cache_health, user_cache_health
from billing.usage.transcript_import import logs_import, usage_events_store

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 12, 10, 0, tzinfo=UTC)
HAIKU, SONNET = "claude-haiku-4-5", "claude-sonnet-4-6"
_ids = itertools.count()


@pytest.fixture
def owner():
    return get_user_model().objects.create(username="health")


def ev(user, key, minutes, *, model=HAIKU, inp=0, w5=0, w1=0, read=0, predicted=None, cause="", **extra):
    at = T0 + timedelta(minutes=minutes)
    return UsageEvent.objects.create(
        session_key=key,
        user=user,
        record_id=f"req_{next(_ids)}",
        source="import",
        model=model,
        occurred_at=at,
        input_tokens=inp,
        cache_write_5m_tokens=w5,
        cache_write_1h_tokens=w1,
        cache_read_tokens=read,
        cost_usd=0,
        price_version=price_version_for(api_model=model, at=at),
        predicted_read_tokens=predicted,
        miss_cause=cause,
        **extra,
    )


def test_hit_rate_counts_only_eligible_requests(owner):
    ev(owner, "s1", 0, w5=20_000, cause="first_turn")  # first request: not eligible
    ev(owner, "s1", 1, inp=10, w5=1_000, read=20_000, predicted=20_000)
    ev(owner, "s1", 2, inp=3_000, cause="below_minimum")  # under Haiku's 4,096 minimum
    ev(owner, "s1", 3, inp=10, w5=800, read=21_000, predicted=21_000)
    ev(owner, "s1", 15, inp=10, w5=22_000, predicted=0, cause="ttl_expired")  # 12 min gap > 5m
    ev(owner, "s1", 15.5, is_sidechain=True, inp=5, w5=9_000, cause="first_turn")  # the sub-agents' first
    ev(owner, "s1", 16, is_sidechain=True, inp=5, w5=500, read=9_000, predicted=9_000)

    health = session_cache_health(user=owner, session_key="s1")

    assert health["requests"] == 7 and health["eligibleRequests"] == 3
    read, write, plain = 20_000 + 21_000 + 9_000, 1_000 + 800 + 500, 10 + 10 + 5
    assert health["tokens"] == {"cacheRead": read, "cacheWrite": write, "input": plain}
    assert health["hitRate"] == round(read / (read + write + plain), 4) and health["healthy"] is True
    assert health["missCauses"] == {"first_turn": 2, "below_minimum": 1, "ttl_expired": 1}
    assert health["prediction"] == {"eligible": 3, "withinOnePercent": 3, "share": 1.0}


def test_one_hour_writes_keep_requests_eligible_across_long_gaps(owner):
    ev(owner, "s1", 0, w1=20_000)
    ev(owner, "s1", 40, inp=5, w1=500, read=20_000)  # 40 min later: within the 1h TTL
    health = session_cache_health(user=owner, session_key="s1")
    assert health["eligibleRequests"] == 1


def test_below_80_percent_is_unhealthy(owner):
    ev(owner, "s1", 0, w5=20_000)
    ev(owner, "s1", 1, inp=5, w5=21_000, predicted=20_000, cause="prefix_changed")
    ev(owner, "s1", 2, inp=5, w5=500, read=21_000, predicted=21_000)
    health = session_cache_health(user=owner, session_key="s1")
    assert health["hitRate"] < 0.8 and health["healthy"] is False
    assert health["prediction"]["withinOnePercent"] == 1


def test_anthropic_diagnostics_name_the_cause(owner):
    ev(owner, "s1", 0, w5=20_000)
    ev(owner, "s1", 1, w5=20_500, cause="unknown", diagnostics={"cache_miss_reason": "tools_changed"})
    ev(owner, "s1", 2, w5=20_900, cause="prefix_changed", diagnostics={"cache_miss_reason": "model_changed"})
    health = session_cache_health(user=owner, session_key="s1")
    assert health["missCauses"] == {"prefix_changed": 1, "model_switch": 1}
    assert health["diagnosedMissReasons"] == {"tools_changed": 1, "model_changed": 1}


def test_flapping_from_the_model_sequence_of_an_imported_session(owner):
    ev(owner, "s1", 0, w5=20_000)
    ev(owner, "s1", 1, model=SONNET, w5=21_000, cause="model_switch")
    ev(owner, "s1", 3, read=20_000, w5=1_500)  # straight back to Haiku within 5 minutes
    ev(owner, "s1", 4, read=21_500, w5=300, is_sidechain=True, model=SONNET)  # sub-agents don't count
    ev(owner, "s1", 30, model=SONNET, w5=23_000)  # 27 min later: a switch, not a flap
    flapping = session_cache_health(user=owner, session_key="s1")["flapping"]
    assert flapping["count"] == 1
    (event,) = flapping["events"]
    assert event["models"] == [HAIKU, SONNET] and event["secondsBetween"] == 120 and event["source"] == "models"


def test_flapping_window_is_the_ttl(owner):
    ev(owner, "s1", 0, w1=20_000)
    ev(owner, "s1", 1, model=SONNET, w1=21_000)
    ev(owner, "s1", 40, read=20_000, w1=1_500)  # 39 minutes: inside a 1h TTL
    assert session_cache_health(user=owner, session_key="s1")["flapping"]["count"] == 1
    assert session_cache_health(user=owner, session_key="s1", ttl="5m")["flapping"]["count"] == 0


def test_user_health_over_a_window_per_session(owner):
    other = get_user_model().objects.create(username="someone-else")
    ev(owner, "old", -60 * 24 * 10, w5=20_000)
    ev(owner, "old", -60 * 24 * 10 + 1, read=20_000, w5=100)
    ev(owner, "good", 0, w5=20_000)
    ev(owner, "good", 1, read=20_000, w5=100)
    ev(owner, "bad", 5, w5=20_000)
    ev(owner, "bad", 6, w5=20_100, cause="prefix_changed")
    ev(other, "theirs", 0, w5=20_000)

    body = user_cache_health(user=owner, days=7, now=T0 + timedelta(hours=1))

    assert body["days"] == 7 and body["sessionCount"] == 2 and body["unhealthySessions"] == 1
    assert [s["sessionKey"] for s in body["sessions"]] == ["bad", "good"]  # latest activity first
    assert body["requests"] == 4 and body["eligibleRequests"] == 2
    assert body["hitRate"] == round(20_000 / (20_000 + 100 + 20_100), 4)
    assert body["missCauses"] == {"prefix_changed": 1}
    assert user_cache_health(user=owner, days=30, now=T0 + timedelta(hours=1))["sessionCount"] == 3


def test_health_of_an_imported_transcript_agrees_with_the_importer(owner):
    log = Path(__file__).parent / "data" / "kaceybui-claude-global-test__aeff6e13-0382-450b-9eb4-888b77c9563d.jsonl"
    report = logs_import([log])
    usage_events_store(report=report, user=owner)
    (session,) = report.sessions

    health = session_cache_health(user=owner, session_key=session.session_id)

    t = session.totals
    assert health["requests"] == t.requests
    assert health["eligibleRequests"] == t.eligible
    assert health["hitRate"] == t.hit_rate
    assert health["prediction"]["withinOnePercent"] == t.within_tolerance
    assert health["missCauses"] == {str(k): v for k, v in t.miss_causes.items()}
