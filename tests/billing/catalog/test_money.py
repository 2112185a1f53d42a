"""The one rule for showing money to people (the admin here; web/static/web/money.js states the same)."""

from decimal import Decimal

import pytest

from billing.catalog.money import usd_display


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
