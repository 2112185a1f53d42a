"""Persisting the per-session cache state.

Writes (`cache_state_record_requests`, `cache_state_rebuild`,
`cache_state_turn_ended`) are services, `cache_state_snapshot` is the selector the quote path
uses. All go through `billing.quotes.cache_tracker.CacheTracker`, so the database and the in-memory
replay agree.

Two sources feed the state. The exact one is the relayed usage, request by request, which
reaches the backend a moment (up to ~1.5 s) after the turn ended. So that a quote made in
that moment still sees the turn the client has just seen end, the turn's end itself is kept
as a *provisional* request (`provisional_turn`): the quote reads the exact state with that
request applied on top, as long as no exact request of that turn or later has arrived. The
exact requests then supersede it; it is never added to them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime

from django.db import transaction
from django.utils.dateparse import parse_datetime

from billing.catalog.cost_engine import Usage
from billing.catalog.selectors import model_priced, session_api_models
from billing.models import CacheEntry, SessionCacheState
from billing.quotes.cache_tracker import CacheEntryState, CacheSnapshot, CacheTracker, TrackedRequest


def _exact_snapshot_of(state: SessionCacheState) -> CacheSnapshot:
    return CacheSnapshot(
        ttl_policy=state.ttl_policy,
        current_model=state.current_model or None,
        context_tokens=state.context_tokens,
        last_request_at=state.last_request_at,
        entries=tuple(
            CacheEntryState(e.model, e.prefix_tokens, e.ttl, e.expires_at, e.platform, e.fixed_start)
            for e in state.entries.order_by("model", "platform", "prefix_tokens")
        ),
        seen_models=frozenset(state.seen_models or ()),
        platform=state.platform,
    )


def snapshot_with_provisional(snapshot: CacheSnapshot, provisional: Mapping | None) -> CacheSnapshot:
    """`snapshot` (the exact state) with the provisional turn applied, unless an exact request
    of that turn or a later one is already in it."""
    if not provisional:
        return snapshot
    at = parse_datetime(provisional["at"])
    if at is None or (snapshot.last_request_at is not None and at <= snapshot.last_request_at):
        return snapshot
    tracker = CacheTracker.from_snapshot(snapshot)
    tracker.record(model=provisional["model"], usage=Usage(**provisional["usage"]), at=at)
    return tracker.snapshot()


def cache_state_snapshot(*, session_key: str) -> CacheSnapshot:
    """The session's cache as the quote sees it (the exact state, with the turn that just ended
    while its usage is on its way); an empty snapshot for an unknown session."""
    state = SessionCacheState.objects.filter(session_key=session_key).first()
    if state is None:
        return CacheSnapshot()
    return snapshot_with_provisional(_exact_snapshot_of(state), state.provisional_turn)


@transaction.atomic
def cache_state_record_requests(
    *, session_key: str, requests: Sequence[TrackedRequest | tuple], ttl_policy: str | None = None
) -> list[CacheSnapshot]:
    """Apply a session's requests, each (canonical API model, usage, start time[, platform]), in order.

    Returns the state just before each request (what a quote or a miss cause is judged
    against). `ttl_policy`: what a new state starts with (the session's TTL until a write
    shows the one its agent uses). The row is locked once and written once, so concurrent
    usage reports of one session apply in turn. A request older than the last one applied is
    ignored for the cache state (a late duplicate or a retry). The provisional turn is dropped
    once a request of that turn or a later one is in.
    """
    state, _ = SessionCacheState.objects.select_for_update().get_or_create(
        session_key=session_key, defaults={"ttl_policy": ttl_policy or "5m"}
    )
    tracker = CacheTracker.from_snapshot(_exact_snapshot_of(state))
    befores = []
    for model, usage, at, platform in (TrackedRequest(*request) for request in requests):
        befores.append(tracker.snapshot())
        if tracker.last_request_at is None or at >= tracker.last_request_at:
            tracker.record(model=model, usage=usage, at=at, platform=platform)
    _store(state, tracker.snapshot())
    return befores


@transaction.atomic
def cache_state_rebuild(*, session_key: str, requests: Sequence[TrackedRequest | tuple]) -> None:
    """Recompute a session's cache state from all its requests (as for
    cache_state_record_requests), in time order: after stored usage was replaced, nothing of
    the replaced requests may linger in it."""
    state, _ = SessionCacheState.objects.select_for_update().get_or_create(session_key=session_key)
    tracker = CacheTracker(ttl_policy=state.ttl_policy)
    ordered = sorted((TrackedRequest(*request) for request in requests), key=lambda request: request.at)
    for model, usage, at, platform in ordered:
        tracker.record(model=model, usage=usage, at=at, platform=platform)
    _store(state, tracker.snapshot())


def _store(state: SessionCacheState, after: CacheSnapshot) -> None:
    state.ttl_policy = after.ttl_policy
    state.platform = after.platform
    state.current_model = after.current_model or ""
    state.context_tokens = after.context_tokens
    state.last_request_at = after.last_request_at
    state.seen_models = sorted(after.seen_models)
    provisional = state.provisional_turn
    if provisional and after.last_request_at is not None and after.last_request_at >= parse_datetime(provisional["at"]):
        state.provisional_turn = None  # the turn's exact usage is in: it replaces the provisional one
    state.save()
    # A handful of rows per model: replacing them is simpler than diffing.
    state.entries.all().delete()
    CacheEntry.objects.bulk_create(
        CacheEntry(
            state=state,
            platform=e.platform,
            model=e.model,
            prefix_tokens=e.prefix_tokens,
            ttl=e.ttl,
            expires_at=e.expires_at,
            fixed_start=e.fixed_start,
        )
        for e in after.entries
    )


def cache_state_ttl(*, session_key: str) -> str | None:
    """The TTL the session's cache state holds: the one its agent's writes used, or the one it
    was started with before any write; None before the session has a cache state."""
    return SessionCacheState.objects.filter(session_key=session_key).values_list("ttl_policy", flat=True).first()


def _turn_usage(*, usage: Mapping, context_tokens: int | None, ttl: str) -> Usage:
    """The turn's ACP usage as one request. ACP sums a turn's requests (a turn with tool calls
    makes several), so when the agent also reported how much context the conversation now uses
    (`usage_update.used`) and the sum exceeds it, the request is fitted to that context: its
    prompt reads and writes at most the conversation, which is what the cache then holds."""
    turn = Usage.from_acp(usage, write_ttl=ttl)
    if context_tokens is None or turn.context_tokens <= context_tokens:
        return turn
    output = min(turn.output_tokens, context_tokens)
    prompt = context_tokens - output
    read = min(turn.cache_read_tokens, prompt)
    write = min(turn.cache_write_tokens, prompt - read)
    return Usage(
        input_tokens=prompt - read - write,
        cache_write_5m_tokens=write if ttl == "5m" else 0,
        cache_write_1h_tokens=write if ttl == "1h" else 0,
        cache_read_tokens=read,
        output_tokens=output,
    )


def cache_state_turn_ended(*, session, usage: Mapping | None, at: datetime, context_tokens: int | None = None) -> None:
    """Record the turn the client has just seen end (its `done` event), provisionally.

    Call it when the turn's `done` passes on its way to the client, before the client gets
    it: a quote made after that sees the turn. `session`: the agent session (anything with
    `key`, `model_id`, `model_map` and `cache_ttl`); `usage`: the `done` event's ACP usage (nothing is
    recorded without one); `at`: when the turn started (a cache entry's lifetime runs from
    its request's start); `context_tokens`: the last `usage_update.used` of the turn, if any.
    The turn's exact, relayed usage replaces this record when it arrives, whichever comes first.
    """
    if not usage:
        return
    session_map = session_api_models(session.model_map)
    model = model_priced(model_id=session.model_id, at=at, session_map=session_map).resolved.api_id
    turn = _turn_usage(usage=usage, context_tokens=context_tokens, ttl=session.cache_ttl)
    provisional = {"at": at.isoformat(), "model": model, "usage": dataclasses.asdict(turn)}
    with transaction.atomic():
        state, created = SessionCacheState.objects.select_for_update().get_or_create(
            session_key=str(session.key),
            defaults={"ttl_policy": session.cache_ttl, "provisional_turn": provisional},
        )
        if created:
            return
        if state.last_request_at is not None and state.last_request_at >= at:
            return  # the turn's exact usage came first
        state.provisional_turn = provisional
        state.save(update_fields=["provisional_turn", "updated_at"])
