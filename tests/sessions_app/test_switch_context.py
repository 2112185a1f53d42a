"""The one-statement read of a session with its cache state and recent switches (PostgreSQL)
gives what the ORM read gives, for every shape of history."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from billing.catalog.cost_engine import Usage
from billing.catalog.selectors import price_version_for
from billing.models import SwitchOutcome, SwitchRecord, UsageEvent
from billing.quotes.cache_store import cache_state_record_requests, cache_state_turn_ended
from billing.quotes.cache_tracker import ANTHROPIC_API, TTL_DELTAS, VERTEX_AI
from billing.quotes.engine import SteadyTurn
from billing.quotes.switch_context import RECENT_SWITCHES, RECENT_TURNS, switch_context_load
from sessions_app.errors import SessionNotFound
from sessions_app.models import AgentSession
from sessions_app.selectors import session_with_switch_context

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement read is PostgreSQL's"),
]


@pytest.fixture
def user():
    return get_user_model().objects.create(username="ctx-user")


@pytest.fixture
def session(user):
    return AgentSession.objects.create(user=user, provider="local", model_id="sonnet", status="ready")


def _switch(session, *, at, frm: str, to: str, outcome=SwitchOutcome.APPLIED) -> None:
    version_from, version_to = price_version_for(api_model=frm, at=at), price_version_for(api_model=to, at=at)
    record = SwitchRecord.objects.create(
        user=session.user, session=session, from_model_id=frm, to_model_id=to, price_version_from=version_from,
        price_version_to=version_to, quoted_tax_usd=Decimal("0.1"), quote_payload={}, confirmed=True, outcome=outcome,
    )  # fmt: skip
    SwitchRecord.objects.filter(pk=record.pk).update(created_at=at)


def _both(session, now):
    fast_session, fast = session_with_switch_context(user=session.user, key=session.key, now=now)
    orm = switch_context_load(session_pk=session.pk, session_key=str(session.key), now=now)
    return fast_session, fast, orm


def test_a_session_with_no_history(session):
    now = timezone.now()
    fast_session, fast, orm = _both(session, now)
    assert fast == orm
    assert fast.snapshot.last_request_at is None and fast.recent_switches == ()
    assert {f.attname: getattr(fast_session, f.attname) for f in AgentSession._meta.concrete_fields} == {
        f.attname: getattr(session, f.attname) for f in AgentSession._meta.concrete_fields
    }


def test_cache_entries_seen_models_and_the_last_switches(session):
    now = timezone.now()
    haiku, sonnet, opus = "claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-6"
    cache_state_record_requests(
        session_key=str(session.key),
        requests=[
            (haiku, Usage(cache_write_5m_tokens=40_000), now - timedelta(minutes=9)),
            (haiku, Usage(cache_read_tokens=40_000, cache_write_5m_tokens=5_000), now - timedelta(minutes=6)),
            # Through Vertex AI: entries of both platforms, read the same way by both paths.
            (sonnet, Usage(cache_write_5m_tokens=47_000, output_tokens=900), now - timedelta(minutes=2), VERTEX_AI),
        ],
    )
    # Outside the longest TTL, a failed one, then more applied ones than the quote reads.
    _switch(session, at=now - TTL_DELTAS["1h"] - timedelta(seconds=1), frm=haiku, to=opus)
    _switch(session, at=now - timedelta(seconds=30), frm=sonnet, to=opus, outcome=SwitchOutcome.FAILED)
    for minutes, (frm, to) in zip((50, 20, 8, 3, 1), [(haiku, sonnet), (sonnet, haiku)] * 3, strict=False):
        _switch(session, at=now - timedelta(minutes=minutes), frm=frm, to=to)

    _, fast, orm = _both(session, now)

    assert fast == orm
    assert len(fast.snapshot.entries) >= 2 and fast.snapshot.seen_models == {haiku, sonnet}
    assert fast.snapshot.current_model == sonnet and fast.snapshot.context_tokens == 47_900
    assert fast.snapshot.platform == VERTEX_AI
    assert {(e.model, e.platform) for e in fast.snapshot.entries} == {(haiku, ANTHROPIC_API), (sonnet, VERTEX_AI)}
    assert len(fast.recent_switches) == RECENT_SWITCHES
    assert [s.at for s in fast.recent_switches] == sorted((s.at for s in fast.recent_switches), reverse=True)
    assert fast.recent_switches[0].at == now - timedelta(minutes=1)


def test_another_users_session_and_a_bad_key_are_not_found(session):
    stranger = get_user_model().objects.create(username="ctx-stranger")
    for user, key in ((stranger, session.key), (session.user, "not-a-uuid")):
        with pytest.raises(SessionNotFound):
            session_with_switch_context(user=user, key=key, now=timezone.now())


def test_the_turn_that_just_ended_is_read_the_same_way(session):
    now = timezone.now()
    haiku = "claude-haiku-4-5"
    cache_state_record_requests(
        session_key=str(session.key),
        requests=[(haiku, Usage(cache_write_5m_tokens=40_000), now - timedelta(minutes=3))],
    )
    session.model_id = "haiku"
    usage = {"inputTokens": 4, "cachedReadTokens": 40_000, "cachedWriteTokens": 2_000, "outputTokens": 300}
    cache_state_turn_ended(session=session, usage=usage, at=now - timedelta(seconds=5))

    _, fast, orm = _both(session, now)

    assert fast == orm
    assert fast.snapshot.context_tokens == 42_304 and fast.snapshot.last_request_at == now - timedelta(seconds=5)


def test_the_typical_turn_from_the_last_warm_requests(session):
    now = timezone.now()
    version = price_version_for(api_model="claude-haiku-4-5", at=now)

    def event(n, *, read, w5=0, w1=0, out=0, sidechain=False):
        return UsageEvent(
            session_key=str(session.key), record_id=f"r{n}", source="transcript", model="claude-haiku-4-5",
            occurred_at=now - timedelta(seconds=1000 - n), input_tokens=1, cache_write_5m_tokens=w5,
            cache_write_1h_tokens=w1, cache_read_tokens=read, output_tokens=out, cost_usd=Decimal(0),
            price_version=version, is_sidechain=sidechain,
        )  # fmt: skip

    # Old turns beyond the last RECENT_TURNS, cold ones and a sub-agent's do not count.
    rows = [event(n, read=5_000, w5=99_999, out=99_999) for n in range(5)]
    rows += [event(10 + n, read=5_000, w5=100 * n, w1=n, out=10 * n) for n in range(RECENT_TURNS)]
    rows += [event(100, read=0, w5=50_000, out=5), event(101, read=5_000, w5=80_000, out=7, sidechain=True)]
    UsageEvent.objects.bulk_create(rows)

    _, fast, orm = _both(session, now)

    assert fast == orm
    # Writes 101 x n for n in 0..19 and outputs 10 x n: lower medians at n = 9.
    assert fast.steady_turn == SteadyTurn(write_tokens=909, output_tokens=90)
