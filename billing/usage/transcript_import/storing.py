"""Store a replayed import as a user's `UsageEvent`s, idempotently per user.

On PostgreSQL the rows go in with one `COPY` (bench/ingest.py measures it beside
`bulk_create` on the same rows: `bulk_create` spends most of an import preparing each field of
each row in Python); elsewhere with `bulk_create`. Both write exactly the same values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from billing.models import UsageEvent
from billing.money import usd_quantize
from billing.usage.transcript_import.replay import cyclic_gc_paused
from billing.usage.transcript_import.report import ImportReport

IMPORT_SOURCE = "import"
# Rows per bulk_create INSERT (and per progress step): large enough that round trips don't
# matter, small enough to stay far below PostgreSQL's 65,535 bind parameters.
STORE_BATCH = 2000
KEYS_PER_QUERY = 500


@transaction.atomic
def usage_events_store(
    *,
    report: ImportReport,
    user,
    progress: Callable[[int], None] | None = None,
    copy: bool | None = None,
) -> tuple[int, int]:
    """Store every replayed request as a `UsageEvent` of `user`; idempotent per
    (user, session, record id), so a re-import creates nothing and another user's import of
    the same transcripts is not mistaken for this one's. Returns (created, already there).

    All or nothing, in one transaction that locks the user's row: two imports for one user
    run one after the other, and the second finds the first one's rows. `progress` is called
    every `STORE_BATCH` requests with the number handled since its last call. `copy`: use
    COPY (default: on PostgreSQL).
    """
    get_user_model().objects.select_for_update().get(pk=user.pk)
    if copy is None:
        copy = connection.vendor == "postgresql"
    with cyclic_gc_paused():
        known = _known(report=report, user=user)
        rows = _rows(report=report, user=user, known=known, progress=progress)
        created = _copy(rows) if copy else _bulk_create(rows)
    handled = sum(len(s.requests) for s in report.sessions)
    return created, handled - created


def _known(*, report: ImportReport, user) -> set[tuple[str, str]]:
    keys = [s.session_id for s in report.sessions]
    known: set[tuple[str, str]] = set()
    for start in range(0, len(keys), KEYS_PER_QUERY):
        known.update(
            UsageEvent.objects.filter(user=user, session_key__in=keys[start : start + KEYS_PER_QUERY]).values_list(
                "session_key", "record_id"
            )
        )
    return known


def _rows(*, report: ImportReport, user, known: set, progress: Callable[[int], None] | None) -> Iterator[dict]:
    """Field values (by attname) of each new event."""
    now = timezone.now()
    handled = 0
    for session in report.sessions:
        for r in session.requests:
            handled += 1
            if progress is not None and handled == STORE_BATCH:
                progress(handled)
                handled = 0
            req = r.request
            if (session.session_id, req.record_id) in known:
                continue
            u = r.usage
            yield {
                "session_key": session.session_id,
                "user_id": user.pk,
                "record_id": req.record_id,
                "source": IMPORT_SOURCE,
                "request_id": req.request_id,
                "model": r.model,
                "occurred_at": req.at,
                "input_tokens": u.input_tokens,
                "cache_write_5m_tokens": u.cache_write_5m_tokens,
                "cache_write_1h_tokens": u.cache_write_1h_tokens,
                "cache_read_tokens": u.cache_read_tokens,
                "output_tokens": u.output_tokens,
                "cost_usd": usd_quantize(r.cost.total),
                "price_version_id": r.version.pk,
                "predicted_read_tokens": r.predicted_read,
                "miss_cause": r.miss_cause,
                "is_sidechain": req.is_sidechain,
                "created_at": now,
            }
    if progress is not None and handled:
        progress(handled)


def _bulk_create(rows: Iterator[dict]) -> int:
    created = 0
    batch: list[UsageEvent] = []
    for row in rows:
        batch.append(UsageEvent(**row))
        if len(batch) == STORE_BATCH:
            created += len(UsageEvent.objects.bulk_create(batch))
            batch = []
    return created + len(UsageEvent.objects.bulk_create(batch))


def _copy(rows: Iterator[dict]) -> int:
    fields = [f for f in UsageEvent._meta.concrete_fields if not f.primary_key]
    names = [f.attname for f in fields]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(UsageEvent._meta.db_table)
    created = 0
    rest = None
    with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            if rest is None:
                # Columns the import leaves to the model take their default, prepared as the ORM would.
                rest = {
                    f.attname: f.get_db_prep_save(f.get_default(), connection) for f in fields if f.attname not in row
                }
            row.update(rest)
            copy.write_row([row[name] for name in names])
            created += 1
    return created
