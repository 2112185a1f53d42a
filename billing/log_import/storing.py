"""Store a replayed import as a user's `UsageEvent`s, idempotently per user."""

from __future__ import annotations

from collections.abc import Callable

from ..models import UsageEvent
from ..money import usd_quantize
from .report import ImportReport

IMPORT_SOURCE = "import"
# Rows per INSERT: large enough that round trips don't matter, small enough to stay far below
# PostgreSQL's 65,535 bind parameters (19 columns a row).
STORE_BATCH = 2000
KEYS_PER_QUERY = 500


def usage_events_store(
    *, report: ImportReport, user, batch_size: int = STORE_BATCH, progress: Callable[[int], None] | None = None
) -> tuple[int, int]:
    """Store every replayed request as a `UsageEvent` of `user`; idempotent per
    (user, session, record id), so a re-import creates nothing and another user's import of
    the same transcripts is not mistaken for this one's. Returns (created, already there).

    `progress` is called after each batch with the number of requests it handled.
    """
    keys = [s.session_id for s in report.sessions]
    known: set[tuple[str, str]] = set()
    for start in range(0, len(keys), KEYS_PER_QUERY):
        known.update(
            UsageEvent.objects.filter(user=user, session_key__in=keys[start : start + KEYS_PER_QUERY]).values_list(
                "session_key", "record_id"
            )
        )
    rows: list[UsageEvent] = []
    created = existing = handled = reported = 0
    for session in report.sessions:
        for r in session.requests:
            req = r.request
            handled += 1
            if (session.session_id, req.record_id) in known:
                existing += 1
                continue
            u = r.usage
            rows.append(
                UsageEvent(
                    session_key=session.session_id,
                    # Ids, not instances: the related-object descriptors are most of a row's build time.
                    user_id=user.pk,
                    record_id=req.record_id[:200],
                    source=IMPORT_SOURCE,
                    request_id=req.request_id[:100],
                    model=r.model,
                    occurred_at=req.at,
                    input_tokens=u.input_tokens,
                    cache_write_5m_tokens=u.cache_write_5m_tokens,
                    cache_write_1h_tokens=u.cache_write_1h_tokens,
                    cache_read_tokens=u.cache_read_tokens,
                    output_tokens=u.output_tokens,
                    cost_usd=usd_quantize(r.cost.total),
                    price_version_id=r.version.pk,
                    predicted_read_tokens=r.predicted_read,
                    miss_cause=r.miss_cause,
                    is_sidechain=req.is_sidechain,
                )
            )
            if len(rows) == batch_size:
                created += _insert(rows)
                rows = []
                if progress is not None:
                    progress(handled - reported)
                    reported = handled
    created += _insert(rows)
    if progress is not None:
        progress(handled - reported)
    return created, existing


def _insert(rows: list[UsageEvent]) -> int:
    # ignore_conflicts: a concurrent import of the same logs must not fail the batch.
    UsageEvent.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)
