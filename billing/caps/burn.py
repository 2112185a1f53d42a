"""Cap units burned per user and session in a window, split into the part due to model
switches and the part due to other cache misses (an estimate: see billing/caps/plan_caps.py).

Scale: users are taken in chunks; each chunk is one GROUP BY over UsageEvent (per distinct
week window, normally one) plus one over the reconciliations, so the work in Python grows
with (users x sessions x models) of the chunk, never with the events, and memory stays flat
as events grow.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connections
from django.db.models import Case, CharField, Sum, Value, When
from django.db.models.functions import Greatest

from billing.caps.cap_model import cap_crossing
from billing.caps.plan_caps import TokenWeights, cap_weights_resolve, weights_from_prices
from billing.caps.weeks import Window
from billing.catalog.price_snapshots import prices_from_version
from billing.catalog.selectors import UnknownModel, price_version_for
from billing.models import ApiModel, MissCause, Subscription, SwitchReconciliation, UsageEvent

log = logging.getLogger(__name__)

ZERO = Decimal(0)
UNIT_PLACES = Decimal("0.000001")
WORST_SESSIONS = 5


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

    Only the models in `weights` count: the join drops any other (its units and its requests).
    `WeightBook.prepare` lists every undated model of the catalog, the ids events are stored
    under (ingestion stores the priced model's id), so what it drops is a model id the catalog
    does not list as undated, e.g. one made an alias after its events were stored.

    Hand-built SQL, kept by measurement: docs/PERFORMANCE.md, "Custom database machinery,
    side by side" (the plain ORM alternative is bench/caps_orm.py).
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
    reconciled_switches_apply(burns, user_ids=user_ids, plans=plans, start=start, end=end, book=book)
    return burns


def reconciled_switches_apply(
    burns: dict[int, UserBurn],
    *,
    user_ids: list[int],
    plans: dict[int, str],
    start: datetime,
    end: datetime,
    book: WeightBook,
) -> None:
    """Swap the estimated switch and miss units of reconciled switches for their real tax."""
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


def runs_out_at(*, units: Decimal, cap_units: Decimal, start: datetime, end: datetime, now: datetime):
    """When the cap is used up at the rate so far, if that falls inside the week (else None)."""
    elapsed = min(now, end) - start
    if units <= 0 or elapsed <= timedelta(0):
        return None
    at = start + elapsed * float(cap_units / units)
    return at if at < end else None


def ran_out_at(
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


def units_quantize(value: Decimal) -> Decimal:
    return value.quantize(UNIT_PLACES)


def burn_worst_sessions(burn: UserBurn) -> list[dict]:
    worst = sorted(burn.sessions.items(), key=lambda kv: (kv[1].units, kv[0]), reverse=True)[:WORST_SESSIONS]
    return [
        {
            "sessionKey": key,
            "units": str(units_quantize(b.units)),
            "switchUnits": str(units_quantize(max(b.switch_units, ZERO))),
            "missUnits": str(units_quantize(max(b.miss_units, ZERO))),
            "requests": b.requests,
        }
        for key, b in worst
    ]


@dataclass(frozen=True, slots=True)
class CapUnits:
    """A cap of so many units a week, in the shape `cap_percent` reads."""

    units_per_week: Decimal
