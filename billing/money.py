"""The one place where money is rounded.

Costs are computed exactly (token counts times Decimal prices) and rounded only
when shown or stored: to the micro-dollar, half-to-even, so that summing many
rounded figures does not drift in one direction.
"""

from decimal import ROUND_HALF_EVEN, Decimal

MICRO_USD = Decimal("0.000001")
ZERO = Decimal(0)
PER_MTOK = Decimal(1_000_000)


def usd_quantize(value: Decimal) -> Decimal:
    """Round an exact dollar amount to the micro-dollar (ROUND_HALF_EVEN)."""
    return value.quantize(MICRO_USD, ROUND_HALF_EVEN)  # positional: this is on the quote's hot path


def usd_str(value: Decimal) -> str:
    """Money in JSON: a decimal string with six places, e.g. "0.615000"."""
    return str(usd_quantize(value))
