"""The one rule for showing money: to people (the admin, reports, mail; web/static/web/money.js
states the same), and to the micro-dollar where figures are compared (the commands)."""

from decimal import Decimal

import pytest

from billing.money import usd_display


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("0.060787", "$0.0608"),  # under a dollar: four places...
        ("0.0034", "$0.0034"),  # ...so that it reads beside the one above
        ("0.99996", "$1.00"),  # rounds up to a dollar: cents
        ("0.99994", "$0.9999"),
        ("1", "$1.00"),
        ("1234.5", "$1,234.50"),
        ("-0.0034", "−$0.0034"),
        ("-2.005", "−$2.01"),
        ("0.00004", "<$0.0001"),  # nonzero never reads as zero
        ("0", "$0.00"),
        ("0.000000", "$0.00"),
    ],
)
def test_usd_display(value, shown):
    assert usd_display(Decimal(value)) == shown


def test_no_amount_is_a_dash():
    assert usd_display(None) == "—"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("0.615", "$0.615000"),
        ("-0.035", "-$0.035000"),  # the sign before the dollar, plain ASCII: it reads back as a number
        ("3165.2636974", "$3165.263697"),  # no grouping: the JSON's figure with a dollar sign
        ("0.0000005", "$0.000000"),  # half-to-even, as stored
        ("-0.0000001", "$0.000000"),  # no negative zero
    ],
)
def test_exact_is_the_stored_micro_dollar_figure(value, shown):
    assert usd_display(Decimal(value), exact=True) == shown


def test_a_difference_is_signed():
    assert usd_display(Decimal("109.07"), signed=True) == "+$109.07"
    assert usd_display(Decimal("-0.06"), signed=True) == "−$0.0600"
    assert usd_display(Decimal("0"), signed=True) == "$0.00"
    assert usd_display(Decimal("0.001"), exact=True, signed=True) == "+$0.001000"
    assert usd_display(Decimal("0.0000001"), exact=True, signed=True) == "$0.000000"  # rounds to no difference
