"""The bounds of a usage record fit the columns they land in, at every price in the catalog."""

from decimal import Decimal

import pytest

from billing.catalog.cost_engine import Usage, usage_cost
from billing.catalog.price_snapshots import prices_from_version
from billing.models import PriceVersion, UsageEvent
from billing.usage.validation import MAX_COST_USD, MAX_TOKENS

pytestmark = pytest.mark.django_db


def _column_max(field_name: str) -> Decimal:
    field = UsageEvent._meta.get_field(field_name)
    return Decimal(10) ** (field.max_digits - field.decimal_places) - Decimal(1).scaleb(-field.decimal_places)


def test_max_cost_is_the_cost_columns_largest_value():
    assert _column_max("cost_usd") == MAX_COST_USD


def test_max_tokens_in_every_class_at_the_dearest_price_cannot_overflow_the_cost_column():
    versions = list(PriceVersion.objects.select_related("api_model"))
    assert versions, "the catalog migration loads the price versions"
    # Every class at its maximum, above any long-context threshold, on the US-only rate.
    usage = Usage(
        input_tokens=MAX_TOKENS,
        cache_write_5m_tokens=MAX_TOKENS,
        cache_write_1h_tokens=MAX_TOKENS,
        cache_read_tokens=MAX_TOKENS,
        output_tokens=MAX_TOKENS,
        inference_geo="us",
    )
    dearest = max(usage_cost(usage=usage, prices=prices_from_version(v)).total for v in versions)
    # With room: the bound could grow tenfold before the column would not hold it.
    assert dearest * 10 < MAX_COST_USD, dearest


def test_token_columns_hold_a_week_of_records_at_the_maximum():
    # PostgreSQL bigint: the cap reports sum a user's week; a million records at the maximum fit.
    assert MAX_TOKENS * 5 * 1_000_000 < 2**63 - 1
