"""Money in admin templates, by the one display rule (billing.money.usd_display)."""

from decimal import Decimal

from django import template

from billing.money import ZERO, usd_display

register = template.Library()


@register.filter
def usd(value: Decimal | None) -> str:
    """An amount; none at all shows as "—"."""
    return usd_display(value)


@register.filter
def usd_or_zero(value: Decimal | None) -> str:
    """A sum over no rows (SQL's NULL) is $0.00."""
    return usd_display(ZERO if value is None else value)
