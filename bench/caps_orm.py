"""The plain-ORM alternatives to the cap reports' hand-built SQL, for bench/reports.py
--side-by-side only (the product does not import this module).

- burn: one `.values(...).annotate(...)` GROUP BY per chunk, streamed, with the weights
  applied in Python by the user's plan (WeightBook.get), instead of billing/caps/burn.py
  `_BURN_SQL` (the weights joined in SQL).
- store: `bulk_update` / `bulk_create(ignore_conflicts=True)`, what billing/caps/reports.py
  already does on other databases, instead of `_store_pg` (jsonb_to_recordset).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from django.db.models import Case, CharField, Count, Sum, Value, When

from billing.caps import burn as burn_module
from billing.caps import calibration as calibration_module
from billing.caps import live as live_module
from billing.caps import reports as reports_module
from billing.caps.burn import (
    ZERO,
    TokenWeights,
    UserBurn,
    WeightBook,
    _input_side_units,
    _miss_excess,
    _write_units,
    reconciled_switches_apply,
)
from billing.caps.cap_model import cap_crossing
from billing.caps.weeks import Window
from billing.models import CapReport, MissCause, UsageEvent

_KIND = Case(
    When(miss_cause="", then=Value("hit")),
    When(miss_cause=MissCause.MODEL_SWITCH, then=Value("switch")),
    default=Value("other"),
    output_field=CharField(),
)


def _grouped_rows(*, user_ids: list[int], start: datetime, end: datetime):
    return (
        UsageEvent.objects.filter(user_id__in=user_ids, occurred_at__gte=start, occurred_at__lt=end)
        .values("user_id", "session_key", "model", kind=_KIND)
        .annotate(
            n=Count("*"),
            i=Sum("input_tokens"),
            w5=Sum("cache_write_5m_tokens"),
            w1=Sum("cache_write_1h_tokens"),
            r=Sum("cache_read_tokens"),
            o=Sum("output_tokens"),
        )
        .order_by()
        .iterator(chunk_size=5000)
    )


def _units(w: TokenWeights, row: dict) -> Decimal:
    return _input_side_units(w, row) + (row["o"] or 0) * w.output


def burn_compute(
    *, user_ids: list[int], plans: dict[int, str], start: datetime, end: datetime, book: WeightBook
) -> dict[int, UserBurn]:
    book.prepare(plans={plans[uid] for uid in user_ids})
    burns: dict[int, UserBurn] = defaultdict(UserBurn)
    for row in _grouped_rows(user_ids=user_ids, start=start, end=end):
        user_id = row["user_id"]
        w = book.get(plans[user_id], row["model"])
        kind = row["kind"]
        burns[user_id].add(
            row["session_key"],
            units=_units(w, row),
            switch=_write_units(w, row) if kind == "switch" else ZERO,
            miss=_miss_excess(w, row) if kind == "other" else ZERO,
            requests=row["n"],
        )
    reconciled_switches_apply(burns, user_ids=user_ids, plans=plans, start=start, end=end, book=book)
    return burns


def ran_out_at(
    *, user_id: int, plan: str, window: Window, cap_units: Decimal, units: Decimal, book: WeightBook
) -> datetime | None:
    if units < cap_units:
        return None

    def units_until(end: datetime) -> Decimal:
        rows = _grouped_rows(user_ids=[user_id], start=window.start, end=end)
        return sum((_units(book.get(plan, row["model"]), row) for row in rows), ZERO)

    return cap_crossing(start=window.start, end=window.end, cap_units=cap_units, units_until=units_until)


def store(to_create: list[CapReport], to_update: list[CapReport]) -> None:
    CapReport.objects.bulk_update(to_update, reports_module._REPORT_FIELDS, batch_size=500)
    # A concurrent run may have inserted the same (user, week): keep theirs.
    CapReport.objects.bulk_create(to_create, batch_size=500, ignore_conflicts=True)
    ids = dict(
        CapReport.objects.filter(
            user_id__in=[r.user_id for r in to_create], week__in={r.week for r in to_create}
        ).values_list("user_id", "pk")
    )
    for report in to_create:
        report.pk = ids.get(report.user_id)


class Swap:
    """Put the ORM version of a piece in place of the hand SQL (and back)."""

    TARGETS = {
        "burn": [
            (reports_module, "burn_compute", burn_compute),
            (reports_module, "ran_out_at", ran_out_at),
            (burn_module, "burn_compute", burn_compute),
            (burn_module, "ran_out_at", ran_out_at),
            (calibration_module, "burn_compute", burn_compute),
            (live_module, "burn_compute", burn_compute),
        ],
        "store": [(reports_module, "_store_pg", store)],
    }

    def __init__(self, piece: str) -> None:
        self.targets = self.TARGETS[piece]
        self.saved = [(module, name, getattr(module, name)) for module, name, _ in self.targets]

    def orm(self) -> None:
        for module, name, replacement in self.targets:
            setattr(module, name, replacement)

    def hand(self) -> None:
        for module, name, original in self.saved:
            setattr(module, name, original)
