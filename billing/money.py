"""The one place where money is rounded and written out.

Costs are computed exactly (token counts times Decimal prices) and rounded only
when shown or stored: to the micro-dollar, half-to-even, so that summing many
rounded figures does not drift in one direction. `usd_str` writes money into JSON,
`usd_display` everywhere a person reads it.
"""

from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

MICRO_USD = Decimal("0.000001")
ZERO = Decimal(0)
PER_MTOK = Decimal(1_000_000)


def usd_quantize(value: Decimal) -> Decimal:
    """Round an exact dollar amount to the micro-dollar (ROUND_HALF_EVEN)."""
    return value.quantize(MICRO_USD, ROUND_HALF_EVEN)  # positional: this is on the quote's hot path


def usd_str(value: Decimal) -> str:
    """Money in JSON: a decimal string with six places, e.g. "0.615000"."""
    return str(usd_quantize(value))


# What a person reads. One rule, the same as the picker page's (web/static/web/money.js):
# $1 or more in cents ($12.35); below a dollar to four places ($0.0608, $0.0034), so that
# amounts side by side have the same precision and a small tax does not read as $0.00.
DISPLAY_CENTS = Decimal("0.01")
DISPLAY_SMALL = Decimal("0.0001")


def usd_display(value: Decimal | str | None, *, exact: bool = False, signed: bool = False) -> str:
    """Every amount shown, wherever it is shown (admin, reports, mail, commands, benchmarks).

    For people: "$12.35", "$0.0608", "−$0.0034", "<$0.0001", "$0.00"; None is "—".
    `exact`: the stored micro-dollar figure, for output that is compared to the micro-dollar
    (the quote and import commands): the JSON's decimal string with the dollar sign after its
    sign, "$3165.263697", "-$0.035000", so that it reads back as the number it is.
    `signed`: a difference, "+" before a positive amount ("+$109.07").
    """
    if value is None:
        return "—"
    value = Decimal(value)
    if exact:
        shown = usd_quantize(value)
        sign = "-" if shown < 0 else "+" if signed and shown > 0 else ""
        return f"{sign}${abs(shown)}"
    size = abs(value)
    if size == 0:
        return "$0.00"
    sign = "−" if value < 0 else "+" if signed else ""
    if size < DISPLAY_SMALL / 2:
        return f"{sign}<${DISPLAY_SMALL}"
    shown = size.quantize(DISPLAY_SMALL, ROUND_HALF_UP)
    if shown >= 1:
        shown = size.quantize(DISPLAY_CENTS, ROUND_HALF_UP)
    return f"{sign}${shown:,}"
