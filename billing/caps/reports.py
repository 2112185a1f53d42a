"""Weekly cap-burn reports for flat-rate (OAuth) users: build, store, and dispatch them.

For a user and a week: the cap units burned (billing/caps/burn.py), the share of the cap,
the part due to model switches and to other cache misses, when the cap runs out at the
current rate, and the worst sessions. Delivery (alerts, the weekly mail, the webhook) is
billing/caps/delivery.py.

Idempotency: one CapReport per (user, week). A report is recomputed until it is sent; a
sent report is final.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import connections, transaction
from django.db.models import Q
from django.utils import timezone

from billing.caps.burn import (
    ZERO,
    CapUnits,
    UserBurn,
    WeightBook,
    burn_compute,
    burn_worst_sessions,
    ran_out_at,
    runs_out_at,
    units_quantize,
)
from billing.caps.calibration import cap_calibrate
from billing.caps.cap_model import cap_percent
from billing.caps.plan_caps import plan_cap_for
from billing.caps.weeks import Window, iso_week_start, report_window
from billing.models import ACTIVE_STATUSES, BillingMode, CapPlan, CapReport, CapSettings, RateLimitEvent, Subscription


def _chunk_context(user_ids: list[int]) -> tuple[dict[int, str], dict[int, CapSettings], dict[str, CapPlan]]:
    plans = dict(
        Subscription.objects.filter(
            user_id__in=user_ids, billing_mode=BillingMode.OAUTH, status__in=ACTIVE_STATUSES
        ).values_list("user_id", "plan")
    )
    rows = {row.user_id: row for row in CapSettings.objects.filter(user_id__in=plans)}
    cap_plans = {cp.plan: cp for cp in CapPlan.objects.filter(plan__in=set(plans.values()))}
    return plans, rows, cap_plans


def cap_reports_build(
    *, user_ids: list[int], now: datetime | None = None, week: str | None = None, previous: bool = False
) -> list[CapReport]:
    """Compute (or recompute, until sent) the reports of a batch of users for one week.

    `week` None: each user's week containing `now` (`previous`: the one before it).
    Users without an active flat-rate plan with a configured cap are skipped.
    """
    now = now or timezone.now()
    plans, rows, cap_plans = _chunk_context(user_ids)
    plans = {uid: plan for uid, plan in plans.items() if plan in cap_plans}
    if not plans:
        return []
    windows = {uid: report_window(row=rows.get(uid), now=now, week=week, previous=previous) for uid in plans}
    # A sent report is final: do not aggregate its week again (the daily run asks every day).
    sent = {
        r.user_id: r
        for r in CapReport.objects.filter(
            user_id__in=list(plans), week__in={w.week for w in windows.values()}, sent_at__isnull=False
        )
        if r.week == windows[r.user_id].week
    }
    plans = {uid: plan for uid, plan in plans.items() if uid not in sent}
    windows = {uid: windows[uid] for uid in plans}
    if not plans:
        return list(sent.values())
    book = WeightBook(now)

    calibrating = set(
        RateLimitEvent.objects.filter(
            user_id__in=list(plans), rate_limit_type="weekly", utilization__isnull=False,
            occurred_at__gte=min(w.start for w in windows.values()), occurred_at__lt=now,
        ).values_list("user_id", flat=True).distinct()
    )  # fmt: skip
    for uid in calibrating:
        calibrated = cap_calibrate(user_id=uid, plan=plans[uid], window=windows[uid], now=now, book=book)
        if calibrated is not None:
            rows[uid] = calibrated

    by_window: dict[Window, list[int]] = defaultdict(list)
    for uid, window in windows.items():
        by_window[window].append(uid)
    burns: dict[int, UserBurn] = {}
    for window, uids in by_window.items():
        burns.update(burn_compute(user_ids=uids, plans=plans, start=window.start, end=window.end, book=book))

    fresh: dict[int, CapReport] = {}
    for uid, plan in plans.items():
        window = windows[uid]
        cap = plan_cap_for(plan=plan, cap_plan=cap_plans[plan], settings_row=rows.get(uid))
        burn = burns.get(uid) or UserBurn()
        units = units_quantize(burn.total.units)
        fresh[uid] = CapReport(
            user_id=uid,
            week=window.week,
            week_start=window.start,
            week_end=window.end,
            plan=plan,
            cap_units=cap.units,
            cap_source=cap.source,
            units=units,
            percent=cap_percent(units=units, cap=CapUnits(cap.units)),
            switch_units=units_quantize(max(burn.total.switch_units, ZERO)),
            miss_units=units_quantize(max(burn.total.miss_units, ZERO)),
            requests=burn.total.requests,
            # A week that is over says when the cap did run out; a running one, when it will.
            runs_out_at=ran_out_at(user_id=uid, plan=plan, window=window, cap_units=cap.units, units=units, book=book)
            if window.end <= now
            else runs_out_at(units=units, cap_units=cap.units, start=window.start, end=window.end, now=now),
            worst_sessions=burn_worst_sessions(burn),
            computed_at=now,
        )
    return list(sent.values()) + _reports_store(fresh)


_REPORT_FIELDS = [
    "week_start", "week_end", "plan", "cap_units", "cap_source", "units", "percent", "switch_units",
    "miss_units", "requests", "runs_out_at", "worst_sessions", "computed_at",
]  # fmt: skip


_RECORD_COLUMNS = (
    "user_id bigint, week text, week_start timestamptz, week_end timestamptz, plan text, cap_units numeric, "
    "cap_source text, units numeric, percent numeric, switch_units numeric, miss_units numeric, requests integer, "
    "runs_out_at timestamptz, worst_sessions jsonb, computed_at timestamptz, id bigint"
)
_STORED = [
    "user_id", "week", "week_start", "week_end", "plan", "cap_units", "cap_source", "units", "percent",
    "switch_units", "miss_units", "requests", "runs_out_at", "worst_sessions", "computed_at",
]  # fmt: skip


@transaction.atomic
def _reports_store(fresh: dict[int, CapReport]) -> list[CapReport]:
    """Insert new reports, update unsent ones; a sent report is final and stays as it was."""
    weeks = {r.week for r in fresh.values()}
    existing = {
        (user_id, week): (pk, sent_at)
        for pk, user_id, week, sent_at in CapReport.objects.select_for_update()
        .filter(user_id__in=list(fresh), week__in=weeks)
        .values_list("pk", "user_id", "week", "sent_at")
    }
    to_update, to_create, sent = [], [], []
    for report in fresh.values():
        old = existing.get((report.user_id, report.week))
        if old is None:
            to_create.append(report)
        elif old[1] is None:
            report.pk = old[0]
            to_update.append(report)
        else:
            sent.append(old[0])
    if connections[CapReport.objects.db].vendor == "postgresql":
        _store_pg(to_create, to_update)
    else:
        CapReport.objects.bulk_update(to_update, _REPORT_FIELDS, batch_size=500)
        # A concurrent run may have inserted the same (user, week): keep theirs.
        CapReport.objects.bulk_create(to_create, batch_size=500, ignore_conflicts=True)
        ids = dict(
            CapReport.objects.filter(user_id__in=[r.user_id for r in to_create], week__in=weeks).values_list(
                "user_id", "pk"
            )
        )
        for report in to_create:
            report.pk = ids.get(report.user_id)
    return list(CapReport.objects.filter(pk__in=sent)) + to_update + [r for r in to_create if r.pk]


_UPDATE_SQL = """
UPDATE {table} AS c SET {assignments}
FROM jsonb_to_recordset(%s::jsonb) AS r({columns})
WHERE c.id = r.id AND c.sent_at IS NULL
"""
# ON CONFLICT: a concurrent run may have inserted the same (user, week); keep theirs.
_INSERT_SQL = """
INSERT INTO {table} ({names}) SELECT {names} FROM jsonb_to_recordset(%s::jsonb) AS r({columns})
ON CONFLICT (user_id, week) DO NOTHING RETURNING id, user_id
"""


def _store_pg(to_create: list[CapReport], to_update: list[CapReport]) -> None:
    """The same writes as bulk_create/bulk_update, as one statement each with the rows in one
    JSON parameter. Kept by measurement (docs/PERFORMANCE.md, "Custom database machinery, side
    by side"): storing a week's 10,000 reports takes 2.5 times as long with bulk_create, and
    updating them 31 times as long with bulk_update (a CASE per column and row)."""
    table = CapReport._meta.db_table
    with connections[CapReport.objects.db].cursor() as cursor:
        if to_update:
            assignments = ", ".join(f"{c} = r.{c}" for c in _STORED if c not in ("user_id", "week"))
            sql = _UPDATE_SQL.format(table=table, assignments=assignments, columns=_RECORD_COLUMNS)
            cursor.execute(sql, [_records_json(to_update)])
        if to_create:
            sql = _INSERT_SQL.format(table=table, names=", ".join(_STORED), columns=_RECORD_COLUMNS)
            cursor.execute(sql, [_records_json(to_create)])
            ids = {user_id: pk for pk, user_id in cursor.fetchall()}
            for report in to_create:
                report.pk = ids.get(report.user_id)


def _records_json(reports: list[CapReport]) -> str:
    def plain(value):
        if isinstance(value, datetime):
            return value.isoformat()
        return str(value) if isinstance(value, Decimal) else value

    return json.dumps([{**{c: plain(getattr(r, c)) for c in _STORED}, "id": r.pk} for r in reports])


def oauth_user_ids(*, chunk: int) -> Iterator[list[int]]:
    """Users on an active flat-rate plan, in chunks, by keyset over (plan, user): flat memory,
    stable under inserts, and a chunk mostly holds one plan (one weighed GROUP BY per plan)."""
    plans = list(CapPlan.objects.values_list("plan", flat=True))
    base = Subscription.objects.filter(
        billing_mode=BillingMode.OAUTH, status__in=ACTIVE_STATUSES, plan__in=plans
    ).order_by("plan", "user_id")
    last_plan, last_id = "", 0
    while True:
        rows = list(
            base.filter(Q(plan__gt=last_plan) | Q(plan=last_plan, user_id__gt=last_id)).values_list("plan", "user_id")[
                :chunk
            ]
        )
        if not rows:
            return
        yield [user_id for _, user_id in rows]
        last_plan, last_id = rows[-1]


def cap_reports_dispatch(
    *,
    week: str | None = None,
    previous: bool = False,
    now: datetime | None = None,
    deliver: Callable[[int], object] | None = None,
) -> int:
    """Build the reports of every flat-rate user, chunk by chunk, and hand each new report's id
    to `deliver` once its chunk is committed (the Celery task passes its delivery task's
    `delay`, so this module never imports the task module). Returns the number of reports."""
    now = now or timezone.now()
    if week is not None:
        iso_week_start(week)  # validate before doing any work
    count = 0
    for ids in oauth_user_ids(chunk=settings.CAP_REPORT_CHUNK):
        with transaction.atomic():
            reports = cap_reports_build(user_ids=ids, now=now, week=week, previous=previous)
            if deliver is not None:
                report_ids = [r.pk for r in reports if r.sent_at is None]
                transaction.on_commit(lambda report_ids=report_ids: [deliver(pk) for pk in report_ids])
        count += len(reports)
    return count
