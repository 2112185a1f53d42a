"""The weekly-cap estimate per plan, read from its configuration (CapPlan, CapWeight).

Anthropic publishes no absolute caps, so the default unit is "API-equivalent dollars":
a request burns what it would cost on the API, and a plan's week holds so many of them
(seeded from CAP_WEEKLY_UNITS: pro 50, max5 250, max20 1000). Admins can change the units
and the weights; a user's weekly rate-limit events calibrate the units (CapSettings).
Every figure is an estimate and is labelled so wherever it shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Q

from billing.caps.cap_model import CapModel, ClassWeights
from billing.catalog.price_snapshots import Prices
from billing.models import CapPlan, CapSettings, CapWeight
from billing.money import PER_MTOK
from mk0r.timefmt import iso_z

ESTIMATE = "estimate"
# What a cap unit is, as the settings state it (CAP_WEEKLY_UNITS): the reports speak in it.
CAP_UNIT = "API-equivalent dollars"


@dataclass(frozen=True, slots=True)
class TokenWeights:
    """Cap units per token of every billed class (both write TTLs)."""

    input: Decimal
    write_5m: Decimal
    write_1h: Decimal
    read: Decimal
    output: Decimal

    def for_ttl(self, ttl: str) -> ClassWeights:
        return ClassWeights(
            input=self.input,
            cache_write=self.write_1h if ttl == "1h" else self.write_5m,
            cache_read=self.read,
            output=self.output,
        )


@dataclass(frozen=True, slots=True)
class PlanCap:
    """The units per week that apply to one user (or plan), and where they come from."""

    plan: str
    units: Decimal
    configured_units: Decimal
    source: str  # configured | calibrated
    label: str
    calibrated_at: object = None
    calibration_events: int = 0

    def calibration_json(self) -> dict | None:
        if self.source != "calibrated":
            return None
        return {
            "unitsPerWeek": str(self.units),
            "calibratedAt": iso_z(self.calibrated_at),
            "events": self.calibration_events,
        }


def _weights_from_row(row: CapWeight) -> TokenWeights:
    return TokenWeights(
        input=row.input / PER_MTOK,
        write_5m=row.cache_write_5m / PER_MTOK,
        write_1h=row.cache_write_1h / PER_MTOK,
        read=row.cache_read / PER_MTOK,
        output=row.output / PER_MTOK,
    )


def weights_from_prices(prices: Prices) -> TokenWeights:
    """The default unit: a token weighs its API price (base tier)."""
    rates = prices.base
    return TokenWeights(rates.input, rates.write_5m, rates.write_1h, rates.read, rates.output)


def cap_weights_resolve(*, plan: str, models: dict[str, str]) -> dict[str, TokenWeights | None]:
    """Weights for each API id in `models` (API id -> family), in one query.

    None for a model without any row: the caller weighs it at its API prices.
    """
    keys = set(models) | set(models.values()) | {"*"}
    rows = CapWeight.objects.filter(Q(plan__isnull=True) | Q(plan__plan=plan), model_key__in=keys).select_related(
        "plan"
    )
    planned: dict[str, CapWeight] = {}
    default: dict[str, CapWeight] = {}
    for row in rows:
        (planned if row.plan_id else default)[row.model_key] = row
    found: dict[str, TokenWeights | None] = {}
    for api_id, family in models.items():
        row = planned.get(api_id) or planned.get(family) or default.get(api_id) or default.get(family)
        row = row or default.get("*")
        found[api_id] = _weights_from_row(row) if row is not None else None
    return found


def plan_cap_for(*, plan: str, user=None, cap_plan: CapPlan | None = None, settings_row=None) -> PlanCap | None:
    """The plan's weekly units, or the user's calibrated units on that plan when present."""
    if cap_plan is None:
        cap_plan = CapPlan.objects.filter(plan=plan).first()
    if cap_plan is None:
        return None
    if settings_row is None and user is not None:
        settings_row = CapSettings.objects.filter(user=user).first()
    if settings_row is not None and settings_row.calibrated_units and settings_row.calibrated_plan == plan:
        return PlanCap(
            plan=plan,
            units=settings_row.calibrated_units,
            configured_units=cap_plan.weekly_units,
            source="calibrated",
            label=cap_plan.label or ESTIMATE,
            calibrated_at=settings_row.calibrated_at,
            calibration_events=settings_row.calibration_events,
        )
    return PlanCap(plan, cap_plan.weekly_units, cap_plan.weekly_units, "configured", cap_plan.label or ESTIMATE)


def cap_model_for_plan(*, plan: str, prices: list[Prices], ttl: str, user=None) -> CapModel | None:
    """The plan's cap with weights for the given models, or None for plans without a weekly cap.

    With `user`, the user's calibrated units apply when they have them.
    """
    cap = plan_cap_for(plan=plan, user=user)
    if cap is None:
        return None
    resolved = cap_weights_resolve(plan=plan, models={p.api_model: p.family for p in prices})
    weights = {}
    for p in prices:
        token_weights = resolved.get(p.api_model) or weights_from_prices(p)
        weights[p.api_model] = token_weights.for_ttl(ttl)
    return CapModel(units_per_week=Decimal(cap.units), weights=weights, label=cap.label)
