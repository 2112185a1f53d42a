"""Weekly-cap estimate for flat-rate plans (Claude Pro / Max via OAuth).

Anthropic publishes no absolute cap, so this is configuration, labelled an estimate:
a number of abstract units per week and, per model (API id or family, "*" as the
fallback), a weight per token class. Calibrate it from the utilization that weekly
rate-limit events report. Pure functions, shared by the quote and the cap reports.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

PERCENT_PLACES = Decimal("0.0001")
HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class ClassWeights:
    """Cap units per token of each class."""

    input: Decimal
    cache_write: Decimal
    cache_read: Decimal
    output: Decimal


@dataclass(frozen=True, slots=True)
class CapModel:
    units_per_week: Decimal
    weights: Mapping[str, ClassWeights]
    label: str = "estimate"

    def weights_for(self, *, api_model: str, family: str = "") -> ClassWeights:
        weights = self.weights
        found = weights.get(api_model) or weights.get(family) or weights.get("*")
        if found is None:
            raise KeyError(f"no cap weights for {api_model!r} ({family or 'no family'})")
        return found


def cap_units(
    *,
    cap: CapModel,
    api_model: str,
    family: str = "",
    input_tokens: int = 0,
    write_tokens: int = 0,
    read_tokens: int = 0,
    output_tokens: int = 0,
) -> Decimal:
    """Cap units one request uses."""
    w = cap.weights_for(api_model=api_model, family=family)
    return input_tokens * w.input + write_tokens * w.cache_write + read_tokens * w.cache_read + output_tokens * w.output


def cap_percent(*, units: Decimal, cap: CapModel) -> Decimal:
    """Share of the weekly cap, in percent, to four places."""
    return (units * HUNDRED / cap.units_per_week).quantize(PERCENT_PLACES)


def cap_pick(*, cap: CapModel | Mapping[str, CapModel] | None, plan: str | None) -> CapModel | None:
    """`cap` may be one model or one per plan; pick the one for `plan`."""
    if cap is None or isinstance(cap, CapModel):
        return cap
    return cap.get(plan) if plan else None


def cap_crossing(
    *,
    start: datetime,
    end: datetime,
    cap_units: Decimal,
    units_until: Callable[[datetime], Decimal],
    resolution: timedelta = timedelta(minutes=1),
) -> datetime | None:
    """When the units burned since `start` first reached `cap_units` inside [start, end), to
    `resolution`; None if they never did. `units_until(t)` is the burn in [start, t), which never
    falls as t grows, so a bisection asks it about log2((end - start) / resolution) times."""
    if cap_units <= 0 or units_until(end) < cap_units:
        return None
    low, high = start, end  # not yet reached by `low`; reached by `high`
    while high - low > resolution:
        middle = low + (high - low) / 2
        if units_until(middle) >= cap_units:
            high = middle
        else:
            low = middle
    return high
