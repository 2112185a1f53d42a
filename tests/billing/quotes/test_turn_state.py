"""The turn that just ended, recorded provisionally until its exact usage arrives."""

from dataclasses import dataclass, field
from datetime import timedelta
from uuid import uuid4

import pytest

from billing.catalog.cost_engine import Usage
from billing.models import SessionCacheState
from billing.quotes.cache_store import cache_state_record_requests, cache_state_snapshot, cache_state_turn_ended
from billing.quotes.cache_tracker import CacheTracker
from tests.billing.conftest import NOW

pytestmark = pytest.mark.django_db
H = "claude-haiku-4-5"
s = timedelta(seconds=1)


@dataclass
class FakeSession:  # what billing needs of an agent session
    key: str
    model_id: str = "haiku"
    cache_ttl: str = "5m"
    model_map: dict = field(default_factory=dict)


def acp(*, inp=0, read=0, write=0, out=0):
    return {"inputTokens": inp, "cachedReadTokens": read, "cachedWriteTokens": write, "outputTokens": out}


@pytest.fixture
def session():
    return FakeSession(key=str(uuid4()))


def test_a_first_turn_is_seen_before_its_usage_is_relayed(session):
    cache_state_turn_ended(session=session, usage=acp(inp=3, write=20_000, out=400), at=NOW)

    snapshot = cache_state_snapshot(session_key=session.key)
    assert snapshot.current_model == H and snapshot.context_tokens == 20_403
    assert snapshot.warm_prefix(model=H, prefix_tokens=20_403, at=NOW + 60 * s) == 20_000
    assert snapshot.last_request_at == NOW


def test_the_relayed_usage_replaces_the_provisional_turn_it_does_not_add_to_it(session):
    cache_state_record_requests(session_key=session.key, requests=[(H, Usage(cache_write_5m_tokens=10_000), NOW)])
    turn_start = NOW + 60 * s
    cache_state_turn_ended(session=session, usage=acp(read=10_000, write=900, out=100), at=turn_start)
    assert cache_state_snapshot(session_key=session.key).context_tokens == 11_000

    # The exact usage says something slightly different (it always wins), stamped later.
    exact = Usage(input_tokens=2, cache_read_tokens=10_000, cache_write_5m_tokens=950, output_tokens=120)
    cache_state_record_requests(session_key=session.key, requests=[(H, exact, turn_start + 2 * s)])

    expected = CacheTracker()
    expected.record(model=H, usage=Usage(cache_write_5m_tokens=10_000), at=NOW)
    expected.record(model=H, usage=exact, at=turn_start + 2 * s)
    assert cache_state_snapshot(session_key=session.key) == expected.snapshot()
    assert SessionCacheState.objects.get(session_key=session.key).provisional_turn is None


def test_a_late_batch_of_an_earlier_turn_does_not_hide_the_latest_turn(session):
    cache_state_turn_ended(session=session, usage=acp(write=10_000, out=100), at=NOW)
    cache_state_turn_ended(session=session, usage=acp(read=10_000, write=600, out=50), at=NOW + 30 * s)
    # Turn 1's exact usage arrives after turn 2 ended: turn 2 stays on top of it.
    cache_state_record_requests(
        session_key=session.key, requests=[(H, Usage(cache_write_5m_tokens=10_000, output_tokens=100), NOW + s)]
    )
    snapshot = cache_state_snapshot(session_key=session.key)
    assert snapshot.context_tokens == 10_650 and snapshot.last_request_at == NOW + 30 * s


def test_exact_usage_that_came_first_is_not_overwritten(session):
    exact = Usage(cache_write_5m_tokens=10_000, output_tokens=100)
    cache_state_record_requests(session_key=session.key, requests=[(H, exact, NOW + s)])
    cache_state_turn_ended(session=session, usage=acp(write=99_999), at=NOW)

    assert cache_state_snapshot(session_key=session.key).context_tokens == 10_100
    assert SessionCacheState.objects.get(session_key=session.key).provisional_turn is None


def test_a_turn_of_several_requests_is_fitted_to_the_context_the_agent_reported(session):
    # Three requests of one turn (tool calls), summed by ACP: 3 x ~20k read. The conversation is 21k.
    usage = acp(inp=9, read=60_000, write=1_500, out=600)
    cache_state_turn_ended(session=session, usage=usage, at=NOW, context_tokens=21_000)

    snapshot = cache_state_snapshot(session_key=session.key)
    assert snapshot.context_tokens == 21_000
    assert snapshot.warm_prefix(model=H, prefix_tokens=21_000, at=NOW + s) == 20_400  # all but the reply


def test_a_turn_without_usage_records_nothing(session):
    cache_state_turn_ended(session=session, usage=None, at=NOW)
    assert not SessionCacheState.objects.filter(session_key=session.key).exists()


def test_writes_of_a_subscription_session_count_as_one_hour_entries(session):
    session.cache_ttl = "1h"
    cache_state_turn_ended(session=session, usage=acp(write=10_000), at=NOW)
    snapshot = cache_state_snapshot(session_key=session.key)
    assert snapshot.ttl_policy == "1h"
    assert snapshot.warm_prefix(model=H, prefix_tokens=10_000, at=NOW + 3599 * s) == 10_000


def test_the_turn_is_on_the_model_the_sessions_agent_runs_under_its_picker_id(session):
    session.model_map = {"haiku": {"apiModel": "claude-haiku-5-5"}}
    cache_state_turn_ended(session=session, usage=acp(write=10_000), at=NOW)
    assert cache_state_snapshot(session_key=session.key).current_model == "claude-haiku-5-5"
