"""Cache-state tracker: TTL edges, refresh on read, switch-back, platforms, the prompt's fixed start,
and the persisted service."""

from datetime import timedelta

import pytest

from billing.catalog.cost_engine import Usage
from billing.quotes.cache_store import cache_state_record_requests, cache_state_snapshot
from billing.quotes.cache_tracker import (
    ANTHROPIC_API,
    VERTEX_AI,
    CacheTracker,
    cache_snapshot_warm,
    request_platform,
)
from tests.billing.conftest import NOW

H, OPUS = "claude-haiku-4-5", "claude-opus-4-6"
s = timedelta(seconds=1)


def w5(n, read=0, out=0, inp=0):
    return Usage(input_tokens=inp, cache_write_5m_tokens=n, cache_read_tokens=read, output_tokens=out)


def w1(n, read=0, out=0):
    return Usage(cache_write_1h_tokens=n, cache_read_tokens=read, output_tokens=out)


@pytest.mark.parametrize(
    ("ttl_usage", "lifetime"),
    [(w5(10_000), 300), (w1(10_000), 3600)],
)
def test_ttl_edges(ttl_usage, lifetime):
    t = CacheTracker()
    t.record(model=H, usage=ttl_usage, at=NOW)
    assert t.predict(model=H, prefix_tokens=12_000, at=NOW + (lifetime - 1) * s) == 10_000
    assert t.predict(model=H, prefix_tokens=12_000, at=NOW + lifetime * s) == 0  # expiry instant misses
    assert t.predict(model=H, prefix_tokens=9_999, at=NOW) == 0  # a shorter prompt cannot read it


def test_reads_refresh_the_ttl_from_the_request_start():
    t = CacheTracker()
    t.record(model=H, usage=w5(10_000, out=200), at=NOW)
    t.record(model=H, usage=w5(1_000, read=10_000, out=300), at=NOW + 299 * s)
    # The 10k entry was read at +299s: alive until +599s; the new 11k entry too.
    assert t.predict(model=H, prefix_tokens=11_000, at=NOW + 598 * s) == 11_000
    assert t.predict(model=H, prefix_tokens=10_500, at=NOW + 598 * s) == 10_000
    assert t.predict(model=H, prefix_tokens=11_000, at=NOW + 599 * s) == 0
    snap = t.snapshot()
    assert snap.context_tokens == 11_300 and snap.current_model == H


def test_mixed_ttls_keep_the_1h_part_after_the_5m_tail_expires():
    t = CacheTracker()
    t.record(model=H, usage=Usage(cache_write_1h_tokens=8_000, cache_write_5m_tokens=2_000), at=NOW)
    assert t.ttl_policy == "5m"
    assert t.predict(model=H, prefix_tokens=10_000, at=NOW + 299 * s) == 10_000
    assert t.predict(model=H, prefix_tokens=10_000, at=NOW + 301 * s) == 8_000
    assert t.predict(model=H, prefix_tokens=10_000, at=NOW + 3600 * s) == 0


def test_switch_back_reads_the_earlier_prefix_while_warm():
    t = CacheTracker()
    t.record(model=H, usage=w5(50_000, out=1_000), at=NOW)
    t.record(model=OPUS, usage=w5(51_500), at=NOW + 60 * s)  # switched: Opus writes everything
    # Back on Haiku 2 minutes later: reads the 50k it had, writes what was added since.
    assert t.predict(model=H, prefix_tokens=53_000, at=NOW + 180 * s) == 50_000
    # Too late: the Haiku entry expired at +300s.
    assert t.predict(model=H, prefix_tokens=53_000, at=NOW + 300 * s) == 0
    snap = t.snapshot()
    assert snap.has_cached(H) and snap.has_cached(OPUS) and snap.current_model == OPUS


def test_each_platform_keeps_its_own_cache():
    # An agent failing over between Anthropic's API and Vertex AI, request by request.
    t = CacheTracker()
    t.record(model=H, usage=w5(50_000, out=400), at=NOW, platform=ANTHROPIC_API)
    # Vertex has nothing of this conversation: the Anthropic entry is no use there.
    assert t.predict(model=H, prefix_tokens=51_000, at=NOW + 10 * s, platform=VERTEX_AI) == 0
    t.record(model=H, usage=w5(51_000, out=400), at=NOW + 10 * s, platform=VERTEX_AI)
    # Back on Anthropic's API: its own 50k, not the 51k Vertex wrote.
    assert t.predict(model=H, prefix_tokens=52_000, at=NOW + 20 * s, platform=ANTHROPIC_API) == 50_000
    assert t.predict(model=H, prefix_tokens=52_000, at=NOW + 20 * s) == 51_000  # where the last one ran
    # A request that names no platform (no request id) runs where the last one did.
    t.record(model=H, usage=w5(1_000, read=51_000), at=NOW + 20 * s)
    snap = t.snapshot()
    assert snap.platform == VERTEX_AI
    assert snap.warm_prefix(model=H, prefix_tokens=53_000, at=NOW + 30 * s) == 52_000
    assert snap.warm_prefix(model=H, prefix_tokens=53_000, at=NOW + 30 * s, platform=ANTHROPIC_API) == 50_000
    assert [e.prefix_tokens for e in snap.entries_of(H, ANTHROPIC_API)] == [50_000]
    assert CacheTracker.from_snapshot(snap).snapshot() == snap


def test_request_ids_name_the_platform():
    assert request_platform("req_vrtx_011CXJgFKCynaQk3gFTLxceU") == VERTEX_AI
    assert request_platform("req_011CXJgFKCynaQk3gFTLxceU") == ANTHROPIC_API
    assert request_platform("") is None


def growing(t, *, prompt, at, minutes, ttl=w5):
    """A conversation growing by 3,000 tokens a minute, each request reading the last one's prompt."""
    for minute in range(minutes):
        t.record(model=H, usage=ttl(3_000, read=prompt), at=at + minute * 60 * s)
        prompt += 3_000
    return prompt


def test_the_read_after_a_rewrite_is_the_fixed_start_the_next_rewrite_reads():
    t = CacheTracker()
    t.record(model=H, usage=w5(60_000, out=500), at=NOW)
    # A compaction: the new prompt keeps the system prompt and tools (12k), the rest is new.
    t.record(model=H, usage=w5(4_000, read=12_000, out=500), at=NOW + 60 * s)
    growing(t, prompt=16_000, at=NOW + 120 * s, minutes=10)
    # Ten minutes on, the 12k entry was read through by every request: still there, still warm.
    # The next compaction's prompt is shorter than every conversation entry: it reads the 12k.
    assert t.predict(model=H, prefix_tokens=20_000, at=NOW + 720 * s) == 12_000
    assert t.predict(model=H, prefix_tokens=50_000, at=NOW + 720 * s) == 46_000  # the conversation itself
    (fixed,) = [e for e in t.snapshot().entries if e.fixed_start]
    assert fixed.prefix_tokens == 12_000 and fixed.expires_at == NOW + 660 * s + 300 * s
    # A later rewrite that keeps less (a changed system prompt) moves the fixed start.
    t.record(model=H, usage=w5(9_000, read=11_000), at=NOW + 720 * s)
    assert [e.prefix_tokens for e in t.snapshot().entries if e.fixed_start] == [11_000]


def test_a_sessions_first_read_is_its_fixed_start_and_outlives_an_idle_hour():
    t = CacheTracker(ttl_policy="1h")
    # The first request reads what an earlier session cached: the system prompt and tools.
    t.record(model=H, usage=w1(6_000, read=14_000), at=NOW)
    growing(t, prompt=20_000, at=NOW + 60 * s, minutes=6, ttl=w1)
    assert t.predict(model=H, prefix_tokens=18_000, at=NOW + 420 * s) == 14_000
    # Idle past the TTL: nothing is warm, the fixed start neither; its length is kept.
    later = NOW + 2 * 3600 * s
    assert t.predict(model=H, prefix_tokens=18_000, at=later) == 0
    t.record(model=H, usage=w1(40_000), at=later)  # the cache rebuilt, the fixed start's breakpoint with it
    t.record(model=H, usage=w1(1_000, read=40_000), at=later + 10 * s)
    assert t.predict(model=H, prefix_tokens=18_000, at=later + 20 * s) == 14_000


def test_snapshot_round_trip_and_warm_builder():
    snap = cache_snapshot_warm(model=H, prefix_tokens=100_000, idle_seconds=120, now=NOW, ttl="1h")
    assert snap.warm_prefix(model=H, prefix_tokens=100_000, at=NOW) == 100_000
    (entry,) = snap.entries
    assert entry.expires_at == NOW - 120 * s + timedelta(hours=1)
    assert CacheTracker.from_snapshot(snap).snapshot() == snap


@pytest.mark.django_db
def test_persisted_service_matches_the_tracker():
    key = "5b0c7f0e-0000-4000-8000-000000000001"
    requests = [
        (H, Usage(cache_write_1h_tokens=20_000, output_tokens=500), NOW),
        (H, Usage(cache_write_1h_tokens=800, cache_read_tokens=20_000, output_tokens=300), NOW + 30 * s),
        (OPUS, Usage(cache_write_1h_tokens=21_600, output_tokens=100), NOW + 90 * s),
    ]
    tracker = CacheTracker(ttl_policy="1h")
    for model, usage, at in requests:
        cache_state_record_requests(session_key=key, requests=[(model, usage, at)])
        tracker.record(model=model, usage=usage, at=at)
        assert cache_state_snapshot(session_key=key) == tracker.snapshot()
    snap = cache_state_snapshot(session_key=key)
    assert snap == tracker.snapshot()
    assert snap.ttl_policy == "1h" and snap.context_tokens == 21_700 and snap.current_model == OPUS
    assert snap.warm_prefix(model=H, prefix_tokens=30_000, at=NOW + 30 * s + timedelta(minutes=59)) == 20_800
    # An out-of-order (older) report does not move the state back.
    cache_state_record_requests(session_key=key, requests=[(H, w5(1), NOW)])
    assert cache_state_snapshot(session_key=key) == snap
    assert cache_state_snapshot(session_key="unknown").context_tokens == 0


@pytest.mark.django_db
def test_persisted_service_keeps_each_platforms_entries():
    key = "5b0c7f0e-0000-4000-8000-000000000002"
    requests = [
        (H, w5(50_000, out=400), NOW, ANTHROPIC_API),
        (H, w5(51_000, out=400), NOW + 10 * s, VERTEX_AI),
        (H, w5(1_000, read=51_000), NOW + 20 * s),
    ]
    befores = cache_state_record_requests(session_key=key, requests=requests)
    tracker = CacheTracker()
    for model, usage, at, *platform in requests:
        assert befores.pop(0) == tracker.snapshot()
        tracker.record(model=model, usage=usage, at=at, platform=platform[0] if platform else None)
    snap = cache_state_snapshot(session_key=key)
    assert snap == tracker.snapshot() and snap.platform == VERTEX_AI
    assert snap.warm_prefix(model=H, prefix_tokens=60_000, at=NOW + 30 * s, platform=ANTHROPIC_API) == 50_000


@pytest.mark.django_db
def test_persisted_service_keeps_the_fixed_start():
    key = "5b0c7f0e-0000-4000-8000-000000000003"
    requests = [(H, w5(60_000), NOW), (H, w5(4_000, read=12_000), NOW + 60 * s)]
    requests += [(H, w5(3_000, read=16_000 + 3_000 * n), NOW + (120 + 60 * n) * s) for n in range(8)]
    cache_state_record_requests(session_key=key, requests=requests)
    tracker = CacheTracker()
    for model, usage, at in requests:
        tracker.record(model=model, usage=usage, at=at)
    snap = cache_state_snapshot(session_key=key)
    assert snap == tracker.snapshot()
    assert snap.warm_prefix(model=H, prefix_tokens=20_000, at=NOW + 600 * s) == 12_000
