"""Persisting the per-session cache state.

Writes (`cache_state_record_requests`, its one-request form, `cache_state_rebuild`) are services,
`cache_state_snapshot` is the selector the quote path uses. Both go through
`billing.cache_state.CacheTracker`, so the database and the in-memory replay agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db import transaction

from .cache_state import CacheEntryState, CacheSnapshot, CacheTracker
from .costs import Usage
from .models import CacheEntry, SessionCacheState


def _snapshot_of(state: SessionCacheState) -> CacheSnapshot:
    return CacheSnapshot(
        ttl_policy=state.ttl_policy,
        current_model=state.current_model or None,
        context_tokens=state.context_tokens,
        last_request_at=state.last_request_at,
        entries=tuple(
            CacheEntryState(e.model, e.prefix_tokens, e.ttl, e.expires_at)
            for e in state.entries.order_by("model", "prefix_tokens")
        ),
        seen_models=frozenset(state.seen_models or ()),
    )


def cache_state_snapshot(*, session_key: str) -> CacheSnapshot:
    """The session's cache as the quote sees it; an empty snapshot for an unknown session."""
    state = SessionCacheState.objects.filter(session_key=session_key).first()
    return _snapshot_of(state) if state is not None else CacheSnapshot()


@transaction.atomic
def cache_state_record_requests(
    *, session_key: str, requests: Sequence[tuple[str, Usage, datetime]], ttl_policy: str | None = None
) -> list[CacheSnapshot]:
    """Apply a session's requests, each (canonical API model, usage, start time), in order.

    Returns the state just before each request (what a quote or a miss cause is judged
    against). The row is locked once and written once, so concurrent usage reports of one
    session apply in turn. A request older than the last one applied is ignored for the cache
    state (a late duplicate or a retry).
    """
    state, _ = SessionCacheState.objects.select_for_update().get_or_create(
        session_key=session_key, defaults={"ttl_policy": ttl_policy or "5m"}
    )
    tracker = CacheTracker.from_snapshot(_snapshot_of(state))
    befores = []
    for model, usage, at in requests:
        befores.append(tracker.snapshot())
        if tracker.last_request_at is None or at >= tracker.last_request_at:
            tracker.record(model=model, usage=usage, at=at)
    _store(state, tracker.snapshot())
    return befores


@transaction.atomic
def cache_state_rebuild(*, session_key: str, requests: Sequence[tuple[str, Usage, datetime]]) -> None:
    """Recompute a session's cache state from all its requests, in time order: after stored
    usage was replaced, nothing of the replaced requests may linger in it."""
    state, _ = SessionCacheState.objects.select_for_update().get_or_create(session_key=session_key)
    tracker = CacheTracker(ttl_policy=state.ttl_policy)
    for model, usage, at in sorted(requests, key=lambda request: request[2]):
        tracker.record(model=model, usage=usage, at=at)
    _store(state, tracker.snapshot())


def _store(state: SessionCacheState, after: CacheSnapshot) -> None:
    state.ttl_policy = after.ttl_policy
    state.current_model = after.current_model or ""
    state.context_tokens = after.context_tokens
    state.last_request_at = after.last_request_at
    state.seen_models = sorted(after.seen_models)
    state.save()
    # A handful of rows per model: replacing them is simpler than diffing.
    state.entries.all().delete()
    CacheEntry.objects.bulk_create(
        CacheEntry(state=state, model=e.model, prefix_tokens=e.prefix_tokens, ttl=e.ttl, expires_at=e.expires_at)
        for e in after.entries
    )


def cache_state_record_request(
    *, session_key: str, model: str, usage: Usage, at: datetime, ttl_policy: str | None = None
) -> CacheSnapshot:
    """Apply one request (see cache_state_record_requests); the state after it."""
    cache_state_record_requests(session_key=session_key, requests=[(model, usage, at)], ttl_policy=ttl_policy)
    return cache_state_snapshot(session_key=session_key)
