"""What a quote reads about one session: its cache state and its last switches.

A quote (and every switch, which quotes first) needs these on each call, so they are read
together with the session row itself. On PostgreSQL that is one statement: the session's
selector appends `PG_COLUMNS` and `PG_JOINS` to its own select; elsewhere (SQLite, the
embedded default) `switch_context_load` reads them through the ORM. Both give the same
`SwitchContext`; a test holds them to it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from statistics import median_low

from billing.models import SwitchOutcome, SwitchRecord, UsageEvent
from billing.quotes.cache_store import cache_state_snapshot, snapshot_with_provisional
from billing.quotes.cache_tracker import TTL_DELTAS, CacheEntryState, CacheSnapshot
from billing.quotes.engine import SteadyTurn, SwitchEvent

# Flapping is A->B->A: the last few switches tell it.
RECENT_SWITCHES = 4
# Switches are read over the longest TTL; the quote keeps those inside the session's own TTL
# (the newest come first, so the last few inside a shorter TTL are among these).
RECENT_WINDOW = max(TTL_DELTAS.values())
# The session's typical warm turn: the (lower) medians of its last few requests that read the
# cache, on the main chain. Recent ones: a session's turns change as its app grows.
RECENT_TURNS = 20


@dataclass(frozen=True, slots=True)
class SwitchContext:
    snapshot: CacheSnapshot
    recent_switches: tuple[SwitchEvent, ...]  # applied, newest first, inside RECENT_WINDOW
    steady_turn: SteadyTurn | None = None  # None before the session's first warm turn


def switch_context_load(*, session_pk: int, session_key: str, now: datetime) -> SwitchContext:
    """The ORM read, for any database."""
    rows = (
        SwitchRecord.objects.filter(
            session_id=session_pk, outcome=SwitchOutcome.APPLIED, created_at__gte=now - RECENT_WINDOW
        )
        .order_by("-created_at")
        .values_list("created_at", "price_version_from__api_model__api_id", "price_version_to__api_model__api_id")[
            :RECENT_SWITCHES
        ]
    )
    turns = list(
        UsageEvent.objects.filter(session_key=session_key, is_sidechain=False, cache_read_tokens__gt=0)
        .order_by("-occurred_at")
        .values_list("cache_write_5m_tokens", "cache_write_1h_tokens", "output_tokens")[:RECENT_TURNS]
    )
    steady = None
    if turns:
        # The lower median: what PostgreSQL's percentile_disc(0.5) gives.
        steady = SteadyTurn(median_low([w5 + w1 for w5, w1, _ in turns]), median_low([out for *_, out in turns]))
    return SwitchContext(
        snapshot=cache_state_snapshot(session_key=session_key),
        recent_switches=tuple(SwitchEvent(*row) for row in rows),
        steady_turn=steady,
    )


# The PostgreSQL read: the caller selects from the session table as `s`, appends PG_COLUMNS to
# its columns and PG_JOINS to its FROM, and puts `pg_params(now)` first among its parameters.
# Entries and switches come back as parallel arrays, which psycopg turns into typed lists.
PG_COLUMNS = """
    cs.id IS NOT NULL, cs.ttl_policy, cs.current_model, cs.context_tokens, cs.last_request_at,
    ARRAY(SELECT jsonb_array_elements_text(cs.seen_models)), cs.provisional_turn::text, cs.platform,
    ce.models, ce.prefix_tokens, ce.ttls, ce.expires_at, ce.platforms, ce.fixed_starts,
    sw.at, sw.from_models, sw.to_models,
    ut.written, ut.output"""
PG_JOINS = """
    LEFT JOIN billing_sessioncachestate cs ON cs.session_key = s.key::text
    LEFT JOIN LATERAL (
        SELECT array_agg(e.model ORDER BY e.model, e.platform, e.prefix_tokens) AS models,
               array_agg(e.prefix_tokens ORDER BY e.model, e.platform, e.prefix_tokens) AS prefix_tokens,
               array_agg(e.ttl ORDER BY e.model, e.platform, e.prefix_tokens) AS ttls,
               array_agg(e.expires_at ORDER BY e.model, e.platform, e.prefix_tokens) AS expires_at,
               array_agg(e.platform ORDER BY e.model, e.platform, e.prefix_tokens) AS platforms,
               array_agg(e.fixed_start ORDER BY e.model, e.platform, e.prefix_tokens) AS fixed_starts
        FROM billing_cacheentry e WHERE e.state_id = cs.id
    ) ce ON true
    LEFT JOIN LATERAL (
        SELECT array_agg(r.created_at ORDER BY r.created_at DESC) AS at,
               array_agg(r.from_model ORDER BY r.created_at DESC) AS from_models,
               array_agg(r.to_model ORDER BY r.created_at DESC) AS to_models
        FROM (
            SELECT sr.created_at, mf.api_id AS from_model, mt.api_id AS to_model
            FROM billing_switchrecord sr
            JOIN billing_priceversion vf ON vf.id = sr.price_version_from_id
            JOIN billing_apimodel mf ON mf.id = vf.api_model_id
            JOIN billing_priceversion vt ON vt.id = sr.price_version_to_id
            JOIN billing_apimodel mt ON mt.id = vt.api_model_id
            WHERE sr.session_id = s.id AND sr.created_at >= %s AND sr.outcome = %s
            ORDER BY sr.created_at DESC
            LIMIT %s
        ) r
    ) sw ON true
    LEFT JOIN LATERAL (
        SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY t.written) AS written,
               percentile_disc(0.5) WITHIN GROUP (ORDER BY t.output_tokens) AS output
        FROM (
            SELECT u.cache_write_5m_tokens + u.cache_write_1h_tokens AS written, u.output_tokens
            FROM billing_usageevent u
            WHERE u.session_key = s.key::text AND NOT u.is_sidechain AND u.cache_read_tokens > 0
            ORDER BY u.occurred_at DESC
            LIMIT %s
        ) t
    ) ut ON true"""


def pg_params(now: datetime) -> list:
    return [now - RECENT_WINDOW, SwitchOutcome.APPLIED.value, RECENT_SWITCHES, RECENT_TURNS]


def switch_context_from_pg(values: Sequence) -> SwitchContext:
    """The context from the PG_COLUMNS of one row."""
    (has_state, ttl_policy, current_model, context_tokens, last_request_at, seen_models, provisional, platform,
     models, prefix_tokens, ttls, expires_at, platforms, fixed_starts, switched_at, from_models, to_models,
     written, output) = values  # fmt: skip
    snapshot = CacheSnapshot()
    if has_state:
        entry_columns = (models, prefix_tokens, ttls, expires_at, platforms, fixed_starts)  # NULL: no entries
        snapshot = CacheSnapshot(
            ttl_policy=ttl_policy,
            current_model=current_model or None,
            context_tokens=context_tokens,
            last_request_at=last_request_at,
            entries=tuple(map(CacheEntryState, *(column or () for column in entry_columns))),
            seen_models=frozenset(seen_models or ()),
            platform=platform,
        )
        snapshot = snapshot_with_provisional(snapshot, json.loads(provisional) if provisional else None)
    switches = tuple(map(SwitchEvent, switched_at or (), from_models or (), to_models or ()))
    steady = SteadyTurn(written, output) if written is not None else None
    return SwitchContext(snapshot=snapshot, recent_switches=switches, steady_turn=steady)
