"""Cost engine: the §6 price table, the billing formula, and properties that must always hold."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.catalog.cost_engine import Usage, usage_cost
from billing.catalog.price_snapshots import prices_from_version
from billing.catalog.selectors import price_version_for
from billing.money import usd_quantize, usd_str
from tests.billing.conftest import HAIKU_45, HAIKU_55, OPUS_46, OPUS_47, SONNET_46

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
    assert usage_cost(usage=Usage(input_tokens=M, service_tier="batch"), prices=SONNET_46).total == Decimal("1.5")


def _catalog(api_id, day):
    at = datetime.fromisoformat(day).replace(tzinfo=UTC)
    return prices_from_version(price_version_for(api_model=api_id, at=at))


# 250k input tokens, the size of the 53 Sonnet 4.6 requests of 2026-04-27 in the shared transcripts.
LONG_REQUEST = Usage(input_tokens=10, cache_write_1h_tokens=2_000, cache_read_tokens=248_000, output_tokens=500)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("api_id", "day", "total", "long_context"),
    [
        # The 1M window at standard rates since it became generally available (2026-03-13).
        ("claude-sonnet-4-6", "2026-04-27", "0.093930", False),  # 10*3 + 2000*6 + 248k*0.30 + 500*15
        ("claude-sonnet-4-6", "2026-03-13", "0.093930", False),
        ("claude-opus-4-6", "2026-04-27", "0.156550", False),  # 10*5 + 2000*10 + 248k*0.50 + 500*25
        # Before it, the 1M beta's 2x input / 1.5x output above 200k input tokens.
        ("claude-sonnet-4-6", "2026-03-01", "0.184110", True),  # 10*6 + 2000*12 + 248k*0.60 + 500*22.50
        ("claude-opus-4-6", "2026-03-01", "0.306850", True),  # 10*10 + 2000*20 + 248k*1 + 500*37.50
        # Sonnet 4 and 4.5 keep the premium above 200k.
        ("claude-sonnet-4-5", "2026-04-27", "0.184110", True),
        ("claude-sonnet-4-0", "2026-04-27", "0.184110", True),
        # Natively 1M models: no tier at all.
        ("claude-opus-5", "2026-08-05", "0.156550", False),
    ],
)
def test_long_context_pricing_is_dated(api_id, day, total, long_context):
    cost = usage_cost(usage=LONG_REQUEST, prices=_catalog(api_id, day))
    assert (usd_str(cost.total), cost.long_context) == (total, long_context)


@pytest.mark.django_db
def test_fable_and_the_read_rates_that_are_not_a_tenth():
    usage = Usage(input_tokens=M, cache_write_5m_tokens=M, cache_write_1h_tokens=M, output_tokens=M)
    reads = Usage(cache_read_tokens=M)
    fable_5, fable_51 = _catalog("claude-fable-5", "2026-07-01"), _catalog("claude-fable-5-1", "2026-11-01")
    assert usage_cost(usage=usage, prices=fable_5).total == Decimal("92.5")  # 10 + 12.50 + 20 + 50
    assert usage_cost(usage=reads, prices=fable_5).total == Decimal(1)
    assert usage_cost(usage=reads, prices=fable_51).total == Decimal("0.25")  # 0.025x input
    assert usage_cost(usage=reads, prices=_catalog("claude-opus-5-5", "2026-11-01")).total == Decimal("0.2")
    assert fable_51.min_cacheable_tokens == 512 and fable_51.family == "fable"


@pytest.mark.django_db
def test_fable_usage_record_is_priced(anon_client, bridge, max20_client):
    from billing.models import UsageEvent
    from tests.sessions_app.relay import minutes_ago, request_record, signed_post

    session = max20_client.post("/api/chat/sessions", format="json").json()
    record = request_record(
        session["sessionId"], "req_fable", at=minutes_ago(1), model="claude-fable-5-1",
        input_tokens=10, write_1h=20_000, read=30_000, output=400,
    )  # fmt: skip
    response = signed_post(anon_client, sandbox_id="static", key=bridge.token, records=[record])
    assert response.status_code == 202, response.json()
    event = UsageEvent.objects.get()
    # 10*10 + 20,000*20 + 30,000*0.25 + 400*50 = 427,600 micro-dollars
    assert (event.cost_usd, event.price_version.label) == (Decimal("0.427600"), "claude-fable-5-1@2026-09-01")


def test_usage_parsing_shapes():
    unsplit = Usage.from_anthropic({"input_tokens": 3, "cache_creation_input_tokens": 1200, "output_tokens": 5})
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
    assert cost.total == cost.input + cost.cache_write_5m + cost.cache_write_1h + cost.cache_read + cost.output


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
@given(below=st.integers(min_value=0, max_value=100_000), above=st.integers(min_value=100_001, max_value=400_000))
def test_tier_crossing_reprices_the_whole_request(below, above):
    low = usage_cost(usage=Usage(cache_read_tokens=below), prices=HAIKU_55)
    high = usage_cost(usage=Usage(cache_read_tokens=above), prices=HAIKU_55)
    assert low.total == below * Decimal("0.01") / M
    assert high.total == above * Decimal("0.05") / M
