"""The weekly-cap estimate per plan, as the quote uses it.

Anthropic publishes no absolute caps, so the unit is "API-equivalent dollars":
a request burns what it would cost on the API, and a plan's week holds
CAP_WEEKLY_UNITS of them. It is an estimate (labelled so wherever it shows) that
the cap reports calibrate from the utilization Anthropic's rate-limit events report.
"""

from decimal import Decimal

from django.conf import settings

from .cap_model import CapModel, ClassWeights
from .prices import Prices


def _weights(prices: Prices, ttl: str) -> ClassWeights:
    rates = prices.base
    return ClassWeights(
        input=rates.input,
        cache_write=rates.write_1h if ttl == "1h" else rates.write_5m,
        cache_read=rates.read,
        output=rates.output,
    )


def cap_model_for_plan(*, plan: str, prices: list[Prices], ttl: str) -> CapModel | None:
    """The plan's cap with weights for the given models, or None for plans without a weekly cap."""
    units = settings.CAP_WEEKLY_UNITS.get(plan)
    if units is None:
        return None
    return CapModel(
        units_per_week=Decimal(units),
        weights={p.api_model: _weights(p, ttl) for p in prices},
        label="estimate",
    )
