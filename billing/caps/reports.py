"""Weekly cap-burn reports and threshold alerts for flat-rate (OAuth) users.

For a user and a week: the cap units burned (an estimate: see billing/caps/plan_caps.py), the
share of the cap, the part due to model switches and to other cache misses, when the
cap runs out at the current rate, and the worst sessions.

Scale: users are taken in chunks; each chunk is one GROUP BY over UsageEvent (per
distinct week window, normally one) plus one over the reconciliations, so the work in
Python grows with (users x sessions x models) of the chunk, never with the events, and
memory stays flat as events grow.

Idempotency: one CapReport per (user, week) and one CapAlert per (user, week, threshold).
A report is recomputed until it is sent; `sent_at` is set under the row lock, so a retried
or duplicated run neither creates nor sends twice.
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from statistics import median

import httpx
from django.conf import settings
from django.core.mail import send_mail
from django.db import connections, transaction
from django.db.models import Case, CharField, Q, Sum, Value, When
from django.db.models.functions import Greatest
from django.utils import timezone

from billing.caps.cap_model import cap_crossing, cap_percent
from billing.caps.plan_caps import (
    CAP_UNIT,
    ESTIMATE,
    PlanCap,
    TokenWeights,
    cap_weights_resolve,
    plan_cap_for,
    weights_from_prices,
)
from billing.catalog.money import usd_display
from billing.catalog.price_snapshots import prices_from_version
from billing.catalog.selectors import UnknownModel, price_version_for
from billing.models import (
    ACTIVE_STATUSES,
    ApiModel,
    BillingMode,
    CapAlert,
    CapPlan,
    CapReport,
    CapSettings,
    MissCause,
    RateLimitEvent,
    ResetMode,
    Subscription,
    SwitchReconciliation,
    UsageEvent,
)
from mk0r.errors import ServiceError
from mk0r.timefmt import iso_z

log = logging.getLogger(__name__)

WEEK = timedelta(days=7)
ZERO = Decimal(0)
UNIT_PLACES = Decimal("0.000001")
THRESHOLDS = (50, 80, 100)
WORST_SESSIONS = 5
# Below this utilization a calibration divides by too small a number to be worth anything.
MIN_CALIBRATION_UTILIZATION = Decimal("0.05")
CALIBRATION_EVENTS = 3
_WEEK_RE = re.compile(r"^(\d{4})-W(\d{2})$")


class InvalidWeek(ServiceError):
    code = "invalid_week"
    message = "week must look like 2026-W10."


class NoWeeklyCap(ServiceError):
    status_code = 404
    code = "no_weekly_cap"
    message = "Your plan bills API dollars and has no weekly cap."


# --- weeks ---------------------------------------------------------------------


def iso_week_label(at: datetime) -> str:
    year, week, _ = at.astimezone(UTC).isocalendar()
    return f"{year}-W{week:02d}"


def iso_week_start(label: str) -> datetime:
    match = _WEEK_RE.match(label or "")
    if not match:
        raise InvalidWeek(extra={"week": label})
    try:
        return datetime.fromisocalendar(int(match[1]), int(match[2]), 1).replace(tzinfo=UTC)
    except ValueError as exc:
        raise InvalidWeek(f"No such ISO week: {label}.", extra={"week": label}) from exc


@dataclass(frozen=True, slots=True)
class Window:
    week: str
    start: datetime
    end: datetime


def _reset_offset(row: CapSettings | None) -> timedelta:
    if row is None or row.reset_mode == ResetMode.ROLLING:
        return timedelta(0)
    return timedelta(days=row.reset_weekday, hours=row.reset_time.hour, minutes=row.reset_time.minute)


def report_window(*, row: CapSettings | None, now: datetime, week: str | None = None, previous: bool = False) -> Window:
    """The cap week a report covers: from the user's reset moment inside the ISO week (Monday
    00:00 UTC by default). Rolling-window users get reports per ISO week."""
    offset = _reset_offset(row)
    if week is not None:
        start = iso_week_start(week) + offset
    else:
        start = iso_week_start(iso_week_label(now)) + offset
        if start > now:
            start -= WEEK
        if previous:
            start -= WEEK
    return Window(iso_week_label(start), start, start + WEEK)


def is_rolling(row: CapSettings | None) -> bool:
    return row is not None and row.reset_mode == ResetMode.ROLLING


# --- figures -------------------------------------------------------------------


@dataclass
class Burn:
    units: Decimal = ZERO
    switch_units: Decimal = ZERO
    miss_units: Decimal = ZERO
    requests: int = 0


@dataclass
class UserBurn:
    total: Burn = field(default_factory=Burn)
    sessions: dict[str, Burn] = field(default_factory=lambda: defaultdict(Burn))

    def add(self, session_key: str, *, units=ZERO, switch=ZERO, miss=ZERO, requests=0) -> None:
        for burn in (self.total, self.sessions[session_key]):
            burn.units += units
            burn.switch_units += switch
            burn.miss_units += miss
            burn.requests += requests


def _input_side_units(w: TokenWeights, row: dict) -> Decimal:
    return (
        (row["i"] or 0) * w.input
        + (row["w5"] or 0) * w.write_5m
        + (row["w1"] or 0) * w.write_1h
        + (row["r"] or 0) * w.read
    )


def _write_units(w: TokenWeights, row: dict) -> Decimal:
    return (row["w5"] or 0) * w.write_5m + (row["w1"] or 0) * w.write_1h


def _miss_excess(w: TokenWeights, row: dict) -> Decimal:
    """What the uncached part of a missed request cost beyond reading it from the cache."""
    excess = (
        (row["i"] or 0) * (w.input - w.read)
        + (row["w5"] or 0) * (w.write_5m - w.read)
        + (row["w1"] or 0) * (w.write_1h - w.read)
    )
    return max(excess, ZERO)


class WeightBook:
    """Cap weights per (plan, API model) for one run: one query for the catalog's models,
    then one per plan; a model outside the catalog costs one more when first seen."""

    def __init__(self, at: datetime) -> None:
        self.at = at
        self._families: dict[str, str] | None = None
        self._by_plan: dict[str, dict[str, TokenWeights]] = defaultdict(dict)

    def prepare(self, *, plans: set[str], models: set[str] = frozenset()) -> None:
        if self._families is None:
            self._families = dict(ApiModel.objects.filter(canonical__isnull=True).values_list("api_id", "family"))
        for plan in plans:
            known = self._by_plan[plan]
            missing = (set(self._families) | set(models)) - known.keys()
            if not missing:
                continue
            resolved = cap_weights_resolve(plan=plan, models={m: self._families.get(m, "") for m in missing})
            for model, weights in resolved.items():
                known[model] = weights or self._api_prices(model)

    def _api_prices(self, model: str) -> TokenWeights:
        # A model with no weight row weighs its API prices (the default unit).
        try:
            return weights_from_prices(prices_from_version(price_version_for(api_model=model, at=self.at)))
        except (UnknownModel, LookupError):
            log.warning("cap weights: unknown model %r counts as zero", model)
            return TokenWeights(ZERO, ZERO, ZERO, ZERO, ZERO)

    def plan_weights(self, plan: str) -> dict[str, TokenWeights]:
        return self._by_plan[plan]

    def get(self, plan: str, model: str) -> TokenWeights:
        found = self._by_plan[plan].get(model)
        if found is None:
            self.prepare(plans={plan}, models={model})
            found = self._by_plan[plan][model]
        return found


_BURN_SQL = """
WITH w (plan, model, wi, w5, w1, wr, wo) AS (VALUES {weights}),
g AS (
    SELECT user_id, session_key, model,
           CASE WHEN miss_cause = '' THEN 0 WHEN miss_cause = %s THEN 1 ELSE 2 END AS kind,
           COUNT(*) AS n, SUM(input_tokens) AS i, SUM(cache_write_5m_tokens) AS c5,
           SUM(cache_write_1h_tokens) AS c1, SUM(cache_read_tokens) AS r, SUM(output_tokens) AS o
    FROM {table}
    WHERE user_id {users} AND occurred_at >= %s AND occurred_at < %s
    GROUP BY user_id, session_key, model, 4
),
u AS (
    SELECT g.user_id, g.session_key, g.kind, g.n,
           g.i * w.wi + g.c5 * w.w5 + g.c1 * w.w1 + g.r * w.wr + g.o * w.wo AS units,
           g.c5 * w.w5 + g.c1 * w.w1 AS writes,
           g.i * (w.wi - w.wr) + g.c5 * (w.w5 - w.wr) + g.c1 * (w.w1 - w.wr) AS excess
    FROM g
    JOIN {subscriptions} s ON s.user_id = g.user_id
    JOIN w ON w.plan = s.plan AND w.model = g.model
)
SELECT user_id, session_key, SUM(n),
       SUM(units),
       SUM(CASE WHEN kind = 1 THEN writes ELSE 0 END),
       SUM(CASE WHEN kind = 2 AND excess > 0 THEN excess ELSE 0 END)
FROM u
GROUP BY user_id, session_key
"""


def _burn_rows(*, user_ids: list[int], weights: dict[str, dict[str, TokenWeights]], start: datetime, end: datetime):
    """The one GROUP BY over UsageEvent for a batch of users sharing a window: units, switch
    and miss units per (user, session), weighed by each user's plan.

    Two levels: integer sums per (user, session, model, miss kind) first, then the weights,
    joined by (plan, model), on those few grouped rows rather than on every event. Unreconciled
    switches count the write of their first request (reconciled ones are swapped for their
    real tax afterwards); other misses count what their uncached part cost beyond a read.
    """
    connection = connections[UsageEvent.objects.db]
    params: list = []
    for plan, by_model in weights.items():
        for model, w in by_model.items():
            params += [plan, model, w.input, w.write_5m, w.write_1h, w.read, w.output]
    if not params or not user_ids:
        return
    if connection.vendor == "postgresql":
        users, user_params = "= ANY(%s)", [list(user_ids)]
        row = "(%s, %s, %s::numeric, %s::numeric, %s::numeric, %s::numeric, %s::numeric)"
    else:
        users, user_params = f"IN ({', '.join(['%s'] * len(user_ids))})", list(user_ids)
        row = "(%s, %s, %s, %s, %s, %s, %s)"
    sql = _BURN_SQL.format(
        weights=", ".join([row] * (len(params) // 7)),
        table=UsageEvent._meta.db_table,
        subscriptions=Subscription._meta.db_table,
        users=users,
    )
    params += [MissCause.MODEL_SWITCH, *user_params, start, end]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while batch := cursor.fetchmany(5000):
            for user_id, session_key, n, units, switch, miss in batch:
                yield user_id, session_key, int(n), _dec(units), _dec(switch), _dec(miss)


def _dec(value) -> Decimal:
    # SQLite answers in floats; PostgreSQL in numerics.
    if value is None:
        return ZERO
    return value if isinstance(value, Decimal) else Decimal(repr(value))


def _reconciled_rows(*, user_ids: list[int], start: datetime, end: datetime) -> list[dict]:
    """Switches reconciled in the window: their real tax (negative taxes count as zero)."""
    return list(
        SwitchReconciliation.objects.filter(
            usage_event__user_id__in=user_ids, usage_event__occurred_at__gte=start, usage_event__occurred_at__lt=end
        )
        .annotate(
            kind=Case(
                When(usage_event__miss_cause="", then=Value("hit")),
                When(usage_event__miss_cause=MissCause.MODEL_SWITCH, then=Value("switch")),
                default=Value("other"),
                output_field=CharField(),
            )
        )
        .values("usage_event__user_id", "usage_event__session_key", "usage_event__model", "kind")
        .annotate(
            tax=Sum(Greatest("actual_tax_usd", Value(ZERO))),
            input_usd=Sum("actual_input_usd"),
            i=Sum("usage_event__input_tokens"),
            w5=Sum("usage_event__cache_write_5m_tokens"),
            w1=Sum("usage_event__cache_write_1h_tokens"),
            r=Sum("usage_event__cache_read_tokens"),
            o=Sum("usage_event__output_tokens"),
        )
        .order_by()
    )


def burn_compute(
    *, user_ids: list[int], plans: dict[int, str], start: datetime, end: datetime, book: WeightBook
) -> dict[int, UserBurn]:
    """Units burned per user and session in [start, end), split into switch and miss parts.

    The grouped rows are streamed: memory holds one total per (user, session), not the rows.
    """
    user_plans = {plans[uid] for uid in user_ids}
    book.prepare(plans=user_plans)
    burns: dict[int, UserBurn] = defaultdict(UserBurn)
    weights = {plan: book.plan_weights(plan) for plan in user_plans}
    for user_id, session_key, n, units, switch, miss in _burn_rows(
        user_ids=user_ids, weights=weights, start=start, end=end
    ):
        burns[user_id].add(session_key, units=units, switch=switch, miss=miss, requests=n)
    for row in _reconciled_rows(user_ids=user_ids, start=start, end=end):
        user_id = row["usage_event__user_id"]
        w = book.get(plans[user_id], row["usage_event__model"])
        input_units = _input_side_units(w, row)
        # The tax is in dollars; convert at these requests' own units per input dollar.
        tax_units = row["tax"] * input_units / row["input_usd"] if row["input_usd"] else ZERO
        kind = row["kind"]
        burns[user_id].add(
            row["usage_event__session_key"],
            switch=tax_units - (_write_units(w, row) if kind == "switch" else ZERO),
            miss=-_miss_excess(w, row) if kind == "other" else ZERO,
        )
    return burns


def runs_out_at(*, units: Decimal, cap_units: Decimal, start: datetime, end: datetime, now: datetime):
    """When the cap is used up at the rate so far, if that falls inside the week (else None)."""
    elapsed = min(now, end) - start
    if units <= 0 or elapsed <= timedelta(0):
        return None
    at = start + elapsed * float(cap_units / units)
    return at if at < end else None


def _ran_out_at(
    *, user_id: int, plan: str, window: Window, cap_units: Decimal, units: Decimal, book: WeightBook
) -> datetime | None:
    """In a finished week: when the user's burn reached the cap (to the minute), or None.
    Asked only of the few who used it all up: a GROUP BY over their week per bisection step."""
    if units < cap_units:
        return None
    weights = {plan: book.plan_weights(plan)}

    def units_until(end: datetime) -> Decimal:
        rows = _burn_rows(user_ids=[user_id], weights=weights, start=window.start, end=end)
        return sum((row[3] for row in rows), ZERO)

    return cap_crossing(start=window.start, end=window.end, cap_units=cap_units, units_until=units_until)


def _q(value: Decimal) -> Decimal:
    return value.quantize(UNIT_PLACES)


def _worst(burn: UserBurn) -> list[dict]:
    worst = sorted(burn.sessions.items(), key=lambda kv: (kv[1].units, kv[0]), reverse=True)[:WORST_SESSIONS]
    return [
        {
            "sessionKey": key,
            "units": str(_q(b.units)),
            "switchUnits": str(_q(max(b.switch_units, ZERO))),
            "missUnits": str(_q(max(b.miss_units, ZERO))),
            "requests": b.requests,
        }
        for key, b in worst
    ]


# --- calibration ---------------------------------------------------------------


def utilization_fraction(value: Decimal) -> Decimal:
    """Rate-limit events report 0..1 or 0..100; anything above 1 is a percentage."""
    return value / 100 if value > 1 else value


def cap_calibrate(*, user_id: int, plan: str, window: Window, now: datetime, book: WeightBook) -> CapSettings | None:
    """Estimate the user's units per week from their latest weekly rate-limit events:
    units burned since that week's start / the utilization the event reported."""
    events = list(
        RateLimitEvent.objects.filter(
            user_id=user_id,
            rate_limit_type="weekly",
            utilization__isnull=False,
            occurred_at__gte=window.start,
            occurred_at__lt=min(window.end, now),
        ).order_by("-occurred_at")[: CALIBRATION_EVENTS * 3]
    )
    estimates = []
    for event in events:
        fraction = utilization_fraction(event.utilization)
        if fraction < MIN_CALIBRATION_UTILIZATION:
            continue
        # resetsAt says when that week ends, hence when it began.
        start = event.resets_at - WEEK if event.resets_at else window.start
        burn = burn_compute(
            user_ids=[user_id], plans={user_id: plan}, start=start, end=event.occurred_at, book=book
        ).get(user_id)
        if burn is None or burn.total.units <= 0:
            continue
        estimates.append(burn.total.units / fraction)
        if len(estimates) == CALIBRATION_EVENTS:
            break
    if not estimates:
        return None
    row, _ = CapSettings.objects.get_or_create(user_id=user_id)
    row.calibrated_units = Decimal(median(estimates)).quantize(Decimal("0.0001"))
    row.calibrated_plan = plan
    row.calibrated_at = now
    row.calibration_events = len(estimates)
    row.save(update_fields=["calibrated_units", "calibrated_plan", "calibrated_at", "calibration_events", "updated_at"])
    return row


# --- reports -------------------------------------------------------------------


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
        units = _q(burn.total.units)
        fresh[uid] = CapReport(
            user_id=uid,
            week=window.week,
            week_start=window.start,
            week_end=window.end,
            plan=plan,
            cap_units=cap.units,
            cap_source=cap.source,
            units=units,
            percent=cap_percent(units=units, cap=_CapLike(cap.units)),
            switch_units=_q(max(burn.total.switch_units, ZERO)),
            miss_units=_q(max(burn.total.miss_units, ZERO)),
            requests=burn.total.requests,
            # A week that is over says when the cap did run out; a running one, when it will.
            runs_out_at=_ran_out_at(user_id=uid, plan=plan, window=window, cap_units=cap.units, units=units, book=book)
            if window.end <= now
            else runs_out_at(units=units, cap_units=cap.units, start=window.start, end=window.end, now=now),
            worst_sessions=_worst(burn),
            computed_at=now,
        )
    return list(sent.values()) + _reports_store(fresh)


@dataclass(frozen=True, slots=True)
class _CapLike:
    units_per_week: Decimal


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
    JSON parameter: Django's per-value parameters cost ~1 ms a row at these sizes."""
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


# --- delivery ------------------------------------------------------------------


def cap_report_json(report: CapReport) -> dict:
    return {
        "week": report.week,
        "weekStart": iso_z(report.week_start),
        "weekEnd": iso_z(report.week_end),
        "plan": report.plan,
        "label": ESTIMATE,
        "capUnits": str(report.cap_units),
        "capSource": report.cap_source,
        "units": str(report.units),
        "capPercent": str(report.percent),
        "switchUnits": str(report.switch_units),
        "missUnits": str(report.miss_units),
        "requests": report.requests,
        "runsOutAt": iso_z(report.runs_out_at),
        "worstSessions": report.worst_sessions,
        "computedAt": iso_z(report.computed_at),
        "sentAt": iso_z(report.sent_at),
    }


def _webhook_url(row: CapSettings | None) -> str:
    return (row.webhook_url if row is not None else "") or settings.CAP_ALERT_WEBHOOK_URL


def _webhook_post(url: str, payload: dict) -> bool:
    try:
        response = httpx.post(url, json=payload, timeout=settings.CAP_WEBHOOK_TIMEOUT, follow_redirects=False)
    except httpx.HTTPError as exc:
        log.warning("cap webhook %s failed: %s", url, exc)
        return False
    if response.status_code >= 300:
        log.warning("cap webhook %s answered %s", url, response.status_code)
        return False
    return True


def _notify(*, user, row: CapSettings | None, subject: str, body: str, payload: dict) -> list[str]:
    channels = []
    if user.email:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email])
        channels.append("email")
    url = _webhook_url(row)
    if url and _webhook_post(url, payload):
        channels.append("webhook")
    return channels


def cap_report_text(report: CapReport) -> str:
    """The report for people, in the settings' unit (CAP_WEEKLY_UNITS: API-equivalent dollars)."""
    over = report.computed_at >= report.week_end
    used = _percent_text(report.percent)
    out_at = f"{report.runs_out_at:%a %Y-%m-%d %H:%M} UTC" if report.runs_out_at else ""
    if over:
        ran_out = f"it ran out on {out_at}." if out_at else "it did not run out."
        outcome = f"The week is over: {used} of the cap used; {ran_out}"
    elif out_at:
        outcome = f"At the current rate the cap runs out on {out_at}."
    else:
        outcome = "At the current rate the cap lasts the week."
    lines = [
        f"Weekly cap report {report.week} ({report.week_start:%Y-%m-%d %H:%M} to {report.week_end:%Y-%m-%d %H:%M} UTC)",
        f"Plan {report.plan}: {usd_display(report.units)} of an estimated {usd_display(report.cap_units)} a week "
        f"in {CAP_UNIT} ({used}, {report.cap_source}). Anthropic publishes no absolute caps: these figures are "
        "estimates.",
        f"Due to model switches: {usd_display(report.switch_units)}; "
        f"to other cache misses: {usd_display(report.miss_units)}.",
        outcome,
    ]
    for s in report.worst_sessions:
        lines.append(f"  session {s['sessionKey']}: {usd_display(Decimal(s['units']))} ({s['requests']} requests)")
    return "\n".join(lines)


def _percent_text(percent: Decimal) -> str:
    if 0 < percent < Decimal("0.01"):
        return "<0.01%"
    return f"{percent.quantize(Decimal('0.01'))}%"


@dataclass(frozen=True)
class Delivery:
    alerts: list[int]
    report_sent: bool


def cap_report_deliver(*, report_id: int, now: datetime | None = None) -> Delivery:
    """Alert on thresholds crossed during the week; send the report once the week is over.

    Runs under the report's row lock, so duplicated deliveries serialize and the second
    finds the alerts and `sent_at` already set.
    """
    now = now or timezone.now()
    with transaction.atomic():
        report = CapReport.objects.select_for_update().select_related("user").filter(pk=report_id).first()
        if report is None:
            return Delivery([], False)
        row = CapSettings.objects.filter(user_id=report.user_id).first()
        if now >= report.week_end:
            if report.sent_at is not None:
                return Delivery([], False)
            payload = {"type": "cap_report", "user": report.user.get_username(), **cap_report_json(report)}
            _notify(
                user=report.user,
                row=row,
                subject=f"Your weekly cap report {report.week} (estimate)",
                body=cap_report_text(report),
                payload=payload,
            )
            report.sent_at = now
            report.save(update_fields=["sent_at"])
            return Delivery([], True)
        return Delivery(_alerts_send(report=report, row=row, now=now), False)


def _alerts_send(*, report: CapReport, row: CapSettings | None, now: datetime) -> list[int]:
    crossed = [t for t in THRESHOLDS if report.percent >= t]
    if not crossed:
        return []
    new = []
    for threshold in crossed:
        _, created = CapAlert.objects.get_or_create(
            user_id=report.user_id, week=report.week, threshold=threshold, defaults={"percent": report.percent}
        )
        if created:
            new.append(threshold)
    if not new:
        return []
    # Several thresholds crossed since the last check: one message, about the highest.
    top = max(new)
    body = (
        f"You have used {_percent_text(report.percent)} of your estimated weekly cap "
        f"({usd_display(report.units)} of {usd_display(report.cap_units)} in {CAP_UNIT}) in {report.week}. "
        f"Model switches: {usd_display(report.switch_units)}; other cache misses: {usd_display(report.miss_units)}. "
        "Anthropic publishes no absolute caps: these figures are estimates."
    )
    payload = {
        "type": "cap_alert",
        "threshold": top,
        "user": report.user.get_username(),
        **cap_report_json(report),
    }
    channels = _notify(
        user=report.user, row=row, subject=f"{top}% of your weekly cap used (estimate)", body=body, payload=payload
    )
    CapAlert.objects.filter(user_id=report.user_id, week=report.week, threshold__in=new).update(
        sent_at=now, channels=channels
    )
    return new


# --- the user's live view -----------------------------------------------------


def cap_live(*, user, now: datetime | None = None) -> dict:
    """This week so far and its projection, for GET /api/billing/cap."""
    now = now or timezone.now()
    subscription = Subscription.objects.filter(user=user).first()
    cap_plan = None
    if subscription is not None and subscription.billing_mode == BillingMode.OAUTH and subscription.is_active:
        cap_plan = CapPlan.objects.filter(plan=subscription.plan).first()
    if cap_plan is None:
        raise NoWeeklyCap(extra={"plan": subscription.plan if subscription else "free"})
    row = CapSettings.objects.filter(user=user).first()
    cap: PlanCap = plan_cap_for(plan=subscription.plan, cap_plan=cap_plan, settings_row=row)
    rolling = is_rolling(row)
    # Rolling: the last 7 days, always a full week. Fixed: since the last reset moment.
    window = Window(iso_week_label(now), now - WEEK, now) if rolling else report_window(row=row, now=now)
    end = min(window.end, now)
    burn = (
        burn_compute(
            user_ids=[user.pk], plans={user.pk: subscription.plan}, start=window.start, end=end, book=WeightBook(now)
        ).get(user.pk)
        or UserBurn()
    )
    units = _q(burn.total.units)
    elapsed = (end - window.start).total_seconds()
    if rolling:
        # A steady rate over a trailing week never crosses the cap it is under.
        projected, out_at = units, (now if units >= cap.units else None)
    else:
        projected = _q(units * Decimal(WEEK.total_seconds()) / Decimal(elapsed)) if elapsed > 0 else units
        out_at = runs_out_at(units=units, cap_units=cap.units, start=window.start, end=window.end, now=now)
    return {
        "label": ESTIMATE,
        "plan": subscription.plan,
        "resetMode": ResetMode.ROLLING if rolling else ResetMode.FIXED,
        "weekStart": iso_z(window.start),
        "weekEnd": iso_z(window.end),
        "capUnits": str(cap.units),
        "configuredCapUnits": str(cap.configured_units),
        "capSource": cap.source,
        "calibration": cap.calibration_json(),
        "units": str(units),
        "capPercent": str(cap_percent(units=units, cap=_CapLike(cap.units))),
        "switchUnits": str(_q(max(burn.total.switch_units, ZERO))),
        "missUnits": str(_q(max(burn.total.miss_units, ZERO))),
        "requests": burn.total.requests,
        "projection": {
            "unitsAtWeekEnd": str(projected),
            "capPercentAtWeekEnd": str(cap_percent(units=projected, cap=_CapLike(cap.units))),
            "runsOutAt": iso_z(out_at),
        },
        "worstSessions": _worst(burn),
    }


__all__ = [
    "InvalidWeek",
    "NoWeeklyCap",
    "cap_calibrate",
    "cap_live",
    "cap_report_deliver",
    "cap_report_json",
    "cap_reports_build",
    "cap_reports_dispatch",
    "iso_week_label",
    "iso_week_start",
    "report_window",
]
