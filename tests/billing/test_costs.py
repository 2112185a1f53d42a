"""Cost engine: the §6 price table, the billing formula, and properties that must always hold."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.costs import Usage, usage_cost
from billing.money import usd_quantize, usd_str

from .conftest import HAIKU_45, HAIKU_55, OPUS_46, OPUS_47, SONNET_46

M = 1_000_000


def one_mtok_each(prices):
    """A million tokens in every class costs exactly the §6 row."""
    cost = usage_cost(
        usage=Usage(
            input_tokens=M,
            cache_write_5m_tokens=M,
            cache_write_1h_tokens=M,
            cache_read_tokens=0,
            output_tokens=M,
        ),
        prices=prices,
    )
    read = usage_cost(usage=Usage(cache_read_tokens=M), prices=prices)
    return (cost.input, cost.cache_write_5m, cost.cache_write_1h, read.cache_read, cost.output)


@pytest.mark.parametrize(
    ("prices", "row"),
    [
        (HAIKU_45, ("1", "1.25", "2", "0.10", "5")),
        (SONNET_46, ("3", "3.75", "6", "0.30", "15")),
        (OPUS_46, ("5", "6.25", "10", "0.50", "25")),
    ],
)
def test_price_table_rows(prices, row):
    assert one_mtok_each(prices) == tuple(Decimal(v) for v in row)


def test_haiku_55_tier_reprices_every_token_of_the_request():
    below = usage_cost(usage=Usage(input_tokens=100_000, output_tokens=1_000), prices=HAIKU_55)
    assert below.total == Decimal("0.0105")  # 100k * 0.10/M + 1k * 0.50/M
    assert not below.long_context
    above = usage_cost(usage=Usage(input_tokens=100_001, output_tokens=1_000), prices=HAIKU_55)
    assert above.long_context
    assert above.total == Decimal("0.0525005")  # 100,001 * 0.50/M + 1k * 2.50/M
    # The tier counts every input class, not only plain input.
    mixed = usage_cost(usage=Usage(input_tokens=1, cache_read_tokens=100_000), prices=HAIKU_55)
    assert mixed.cache_read == Decimal("0.005") and mixed.input == Decimal("0.0000005")


def test_worked_claude_code_request_to_the_micro_dollar():
    """Real usage line (Haiku 4.5): 10 input, 4,697 1h-written, 18,294 read, 1 output.

    10 * 1/M + 4,697 * 2/M + 18,294 * 0.10/M + 1 * 5/M
    = 0.00001 + 0.009394 + 0.0018294 + 0.000005 = 0.0112384 -> $0.011238
    """
    usage = Usage.from_anthropic(
        {
            "input_tokens": 10,
            "cache_creation_input_tokens": 4697,
            "cache_read_input_tokens": 18294,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 4697},
            "output_tokens": 1,
            "service_tier": "standard",
            "inference_geo": "not_available",
        }
    )
    cost = usage_cost(usage=usage, prices=HAIKU_45)
    assert cost.total == Decimal("0.0112384")
    assert usd_str(cost.total) == "0.011238"
    assert cost.to_json()["cacheWrite1hUsd"] == "0.009394"


def test_write_replaces_the_plain_input_charge():
    # A cold 10k prefix with a breakpoint at its end: 10k * 3.75/M, not 10k * (3 + 3.75)/M.
    cost = usage_cost(usage=Usage(cache_write_5m_tokens=10_000), prices=SONNET_46)
    assert cost.total == Decimal("0.0375")


def test_batch_and_us_only_multipliers():
    usage = Usage(input_tokens=M, output_tokens=M)
    assert usage_cost(usage=usage, prices=OPUS_46).total == Decimal(30)
    assert usage_cost(usage=usage, prices=OPUS_46, batch=True).total == Decimal(15)
    assert usage_cost(usage=usage, prices=OPUS_46, geo="us").total == Decimal("33.0")
    assert usage_cost(usage=usage, prices=OPUS_46, batch=True, geo="us").total == Decimal("16.50")
    # The request's own inference_geo is used when geo is not given; older models have no surcharge.
    assert usage_cost(usage=Usage(input_tokens=M, inference_geo="us"), prices=OPUS_47).total == Decimal("5.5")
    assert usage_cost(usage=Usage(input_tokens=M, inference_geo="us"), prices=HAIKU_45).total == Decimal(1)
    assert usage_cost(usage=Usage(input_tokens=M, service_tier="batch"), prices=SONNET_46).total == Decimal(
        "1.5"
    )


def test_usage_parsing_shapes():
    unsplit = Usage.from_anthropic(
        {"input_tokens": 3, "cache_creation_input_tokens": 1200, "output_tokens": 5}
    )
    assert (unsplit.cache_write_5m_tokens, unsplit.cache_write_1h_tokens) == (1200, 0)
    told = Usage.from_anthropic({"cache_creation_input_tokens": 1200}, write_ttl="1h")
    assert (told.cache_write_5m_tokens, told.cache_write_1h_tokens) == (0, 1200)
    partial_split = Usage.from_anthropic(
        {"cache_creation_input_tokens": 1000, "cache_creation": {"ephemeral_1h_input_tokens": 600}}
    )
    assert (partial_split.cache_write_5m_tokens, partial_split.cache_write_1h_tokens) == (400, 600)
    acp = Usage.parse(
        {
            "inputTokens": 10,
            "outputTokens": 40,
            "cachedReadTokens": 9000,
            "cachedWriteTokens": 500,
            "totalTokens": 9550,
        }
    )
    assert acp == Usage(input_tokens=10, cache_write_5m_tokens=500, cache_read_tokens=9000, output_tokens=40)
    assert acp.total_input_tokens == 9510 and acp.context_tokens == 9550
    with pytest.raises(ValueError):
        Usage.from_anthropic({"input_tokens": -1})
    with pytest.raises(ValueError):
        Usage.from_anthropic({"input_tokens": 1.5})


def test_quantize_is_half_even_to_the_micro_dollar():
    assert usd_quantize(Decimal("0.0000005")) == Decimal("0.000000")
    assert usd_quantize(Decimal("0.0000015")) == Decimal("0.000002")
    assert usd_str(Decimal("0.615")) == "0.615000"


counts = st.integers(min_value=0, max_value=3_000_000)
usages = st.builds(
    Usage,
    input_tokens=counts,
    cache_write_5m_tokens=counts,
    cache_write_1h_tokens=counts,
    cache_read_tokens=counts,
    output_tokens=counts,
)
all_prices = st.sampled_from([HAIKU_45, HAIKU_55, SONNET_46, OPUS_46, OPUS_47])
FLAT = [HAIKU_45, SONNET_46, OPUS_46, OPUS_47]  # no long-context tier: cost is linear everywhere


@settings(max_examples=300, deadline=None)
@given(a=usages, b=usages, prices=st.sampled_from(FLAT))
def test_linearity(a, b, prices):
    assert usage_cost(usage=a + b, prices=prices).total == (
        usage_cost(usage=a, prices=prices).total + usage_cost(usage=b, prices=prices).total
    )


@settings(max_examples=300, deadline=None)
@given(u=usages, prices=all_prices)
def test_each_token_billed_in_exactly_one_class(u, prices):
    cost = usage_cost(usage=u, prices=prices)
    rates = prices.rates_for(u.total_input_tokens)
    assert cost.input == u.input_tokens * rates.input
    assert cost.cache_write_5m == u.cache_write_5m_tokens * rates.write_5m
    assert cost.cache_write_1h == u.cache_write_1h_tokens * rates.write_1h
    assert cost.cache_read == u.cache_read_tokens * rates.read
    assert cost.output == u.output_tokens * rates.output
    assert (
        cost.total == cost.input + cost.cache_write_5m + cost.cache_write_1h + cost.cache_read + cost.output
    )


@settings(max_examples=300, deadline=None)
@given(
    u=usages,
    field=st.sampled_from(
        [
            "input_tokens",
            "cache_write_5m_tokens",
            "cache_write_1h_tokens",
            "cache_read_tokens",
            "output_tokens",
        ]
    ),
    extra=st.integers(min_value=1, max_value=100_000),
    prices=all_prices,
    batch=st.booleans(),
    geo=st.sampled_from([None, "us", "global"]),
)
def test_monotone_and_never_negative(u, field, extra, prices, batch, geo):
    more = Usage(**{**{f: getattr(u, f) for f in Usage.__slots__}, field: getattr(u, field) + extra})
    before = usage_cost(usage=u, prices=prices, batch=batch, geo=geo).total
    after = usage_cost(usage=more, prices=prices, batch=batch, geo=geo).total
    assert before >= 0
    assert after >= before


@settings(max_examples=200, deadline=None)
@given(
    below=st.integers(min_value=0, max_value=100_000), above=st.integers(min_value=100_001, max_value=400_000)
)
def test_tier_crossing_reprices_the_whole_request(below, above):
    low = usage_cost(usage=Usage(cache_read_tokens=below), prices=HAIKU_55)
    high = usage_cost(usage=Usage(cache_read_tokens=above), prices=HAIKU_55)
    assert low.total == below * Decimal("0.01") / M
    assert high.total == above * Decimal("0.05") / M
