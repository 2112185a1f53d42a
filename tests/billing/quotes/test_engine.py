"""The switch quote (DESIGN.md §6), figure by figure, against hand-computed values."""

from datetime import timedelta
from decimal import Decimal

import pytest

from billing.caps.cap_model import CapModel, ClassWeights
from billing.catalog.cost_engine import Usage
from billing.money import usd_quantize
from billing.quotes.cache_tracker import CacheTracker, cache_snapshot_warm
from billing.quotes.engine import LOGGED_TURN, SteadyTurn, SwitchEvent, quote_compute
from tests.billing.conftest import HAIKU_45, HAIKU_55, NOW, OPUS_46, OPUS_47, SONNET_46

s = timedelta(seconds=1)
D = Decimal
# The typical warm turn the hand-worked examples assume: a 1,000-token tail written, 500 out.
TURN = SteadyTurn(write_tokens=1_000, output_tokens=500)


def quote(src, dst, prefix, *, idle=0, ttl="5m", snapshot=None, **kw):
    snapshot = snapshot or cache_snapshot_warm(
        model=src.api_model, prefix_tokens=prefix, idle_seconds=idle, now=NOW, ttl=ttl
    )
    return quote_compute(
        from_model=src.api_model, to_model=dst.api_model, snapshot=snapshot,
        prices_from=src, prices_to=dst, now=NOW, **kw,
    )  # fmt: skip


def money(q):
    return (q.stay_usd, q.switch_usd, q.tax_usd, q.cache_rebuild_usd, q.rate_delta_usd)


def test_worked_example_haiku_to_opus():
    """100k-token conversation on Haiku 4.5, switching to Opus 4.6, 5m TTL, cache warm.

    stay   = 100,000 read    x $0.10/MTok = $0.010
    switch = 100,000 written x $6.25/MTok = $0.625
    tax    = $0.615, of which
      rate delta    = 100,000 read on Opus x $0.50/MTok - $0.010 = $0.040
      cache rebuild = $0.615 - $0.040 = $0.575
    steady state (read 100k, write 1,000-token tail, 500 out):
      Opus  0.05 + 0.00625 + 0.0125 = 0.06875; Haiku 0.01 + 0.00125 + 0.0025 = 0.01375 -> +$0.055/turn
    so switching never pays back; first token: 100,000 uncached / 12,000 tok/s = 8,333 ms.
    """
    q = quote(HAIKU_45, OPUS_46, 100_000, steady_turn=TURN)
    assert money(q) == (D("0.010000"), D("0.625000"), D("0.615000"), D("0.575000"), D("0.040000"))
    assert q.steady_state_delta_usd == D("0.055000")
    assert q.break_even_turns is None
    assert q.ttft_penalty_ms == 8333
    assert (q.cache_state_from, q.cache_state_to) == ("warm", "none")
    assert q.warnings == []
    assert q.to_json() == {
        "prefixTokens": {"from": 100_000, "to": 100_000, "toLow": 100_000, "toHigh": 100_000, "measured": None},
        "cacheState": {"from": "warm", "to": "none"},
        "nextTurn": {"stayUsd": "0.010000", "switchUsd": "0.625000"},
        "taxUsd": "0.615000",
        "breakdown": {"cacheRebuildUsd": "0.575000", "rateDeltaUsd": "0.040000"},
        "steadyStateDeltaUsdPerTurn": "0.055000",
        "breakEvenTurns": None,
        "ttftPenaltyMs": 8333,
        "capPercent": None,
        "warnings": [],
        "priceVersion": {"from": "claude-haiku-4-5@test", "to": "claude-opus-4-6@test"},
        "currency": "USD",
    }


def test_new_message_is_written_in_both_cases():
    q = quote(HAIKU_45, OPUS_46, 100_000, new_tokens=2_000)
    # stay 0.01 + 2,000 x 1.25/M; switch 102,000 x 6.25/M
    assert (q.stay_usd, q.switch_usd, q.tax_usd) == (D("0.012500"), D("0.637500"), D("0.625000"))


@pytest.mark.parametrize(
    ("ttl", "idle", "state", "stay", "switch", "tax", "rebuild"),
    [
        ("5m", 299, "warm", "0.010000", "0.625000", "0.615000", "0.575000"),
        ("5m", 300, "cold", "0.125000", "0.625000", "0.500000", "0.000000"),
        ("1h", 300, "warm", "0.010000", "1.000000", "0.990000", "0.950000"),
        ("1h", 3599, "warm", "0.010000", "1.000000", "0.990000", "0.950000"),
        ("1h", 3600, "cold", "0.200000", "1.000000", "0.800000", "0.000000"),
    ],
)
def test_ttl_edges(ttl, idle, state, stay, switch, tax, rebuild):
    q = quote(HAIKU_45, OPUS_46, 100_000, idle=idle, ttl=ttl)
    assert q.cache_state_from == state
    assert (q.stay_usd, q.switch_usd, q.tax_usd, q.cache_rebuild_usd) == (
        D(stay),
        D(switch),
        D(tax),
        D(rebuild),
    )
    # Already cold: staying rewrites too, so the tax is the rate difference only.
    assert ("already_cold" in q.warnings) == (state == "cold")


def test_reads_refresh_the_ttl():
    t = CacheTracker()
    t.record(model=HAIKU_45.api_model, usage=Usage(cache_write_5m_tokens=100_000), at=NOW - 400 * s)
    t.record(
        model=HAIKU_45.api_model,
        usage=Usage(cache_read_tokens=100_000, cache_write_5m_tokens=1_000, output_tokens=500),
        at=NOW - 160 * s,
    )
    q = quote(HAIKU_45, OPUS_46, 0, snapshot=t.snapshot())
    # Warm thanks to the read at -160s: read 101,000 x 0.10/M + write 500 x 1.25/M.
    assert q.prefix_from == 101_500 and q.cache_state_from == "warm"
    assert (q.stay_usd, q.switch_usd, q.tax_usd) == (D("0.010725"), D("0.634375"), D("0.623650"))


def _switched_session():
    """Haiku 50k written at -200s, then switched to Opus at -100s (51k written, 1k out)."""
    t = CacheTracker()
    t.record(
        model=HAIKU_45.api_model,
        usage=Usage(cache_write_5m_tokens=50_000, output_tokens=1_000),
        at=NOW - 200 * s,
    )
    t.record(
        model=OPUS_46.api_model,
        usage=Usage(cache_write_5m_tokens=51_000, output_tokens=1_000),
        at=NOW - 100 * s,
    )
    return t.snapshot()


def test_switch_back_within_the_ttl_reads_the_earlier_prefix():
    recent = [SwitchEvent(NOW - 100 * s, HAIKU_45.api_model, OPUS_46.api_model)]
    q = quote(OPUS_46, HAIKU_45, 0, snapshot=_switched_session(), recent_switches=recent)
    # stay (Opus): read 51,000 x 0.50/M + write 1,000 x 6.25/M = 0.03175
    # back (Haiku): read 50,000 x 0.10/M + write 2,000 x 1.25/M = 0.0075
    assert (q.stay_usd, q.switch_usd, q.tax_usd) == (D("0.031750"), D("0.007500"), D("-0.024250"))
    # same state on Haiku (read 51,000, write 1,000) = 0.00635 -> rate delta -0.0254, rebuild the rest
    assert (q.rate_delta_usd, q.cache_rebuild_usd) == (D("-0.025400"), D("0.001150"))
    assert (q.cache_state_from, q.cache_state_to) == ("warm", "partial")
    assert q.warnings == ["switch_back_warm", "flapping"]
    assert q.break_even_turns == 0


def test_switch_back_after_the_ttl_is_cold():
    at = NOW + 100 * s  # the Haiku entry expired at exactly this instant
    snap = _switched_session()
    q = quote_compute(
        from_model=OPUS_46.api_model, to_model=HAIKU_45.api_model, snapshot=snap,
        prices_from=OPUS_46, prices_to=HAIKU_45, now=at,
        recent_switches=[(NOW - 201 * s, HAIKU_45.api_model, OPUS_46.api_model)],
    )  # fmt: skip
    assert (q.switch_usd, q.tax_usd) == (D("0.065000"), D("0.033250"))  # 52,000 x 1.25/M - 0.03175
    assert q.cache_state_to == "cold"
    assert q.warnings == []  # the earlier switch is 301 s old: outside the 5m TTL, not flapping


def test_below_minimum_is_plain_input():
    q = quote(HAIKU_45, OPUS_46, 3_000)  # both minimums are 4,096
    assert (q.stay_usd, q.switch_usd, q.tax_usd, q.cache_rebuild_usd) == (
        D("0.003000"), D("0.015000"), D("0.012000"), D("0.000000"),
    )  # fmt: skip
    assert (q.cache_state_from, q.cache_state_to) == ("below_minimum", "below_minimum")
    assert q.warnings == ["below_minimum"]
    q = quote(SONNET_46, HAIKU_45, 2_000)  # cacheable on Sonnet (1,024), not on Haiku (4,096)
    assert (q.stay_usd, q.switch_usd, q.tax_usd) == (D("0.000600"), D("0.002000"), D("0.001400"))
    assert (q.cache_state_from, q.cache_state_to) == ("warm", "below_minimum")


def test_tokenizer_estimate_range():
    q = quote(SONNET_46, OPUS_47, 100_000)
    # legacy 1.00-1.00 -> 1.00-1.35: point 100,000 x 1.175 = 117,500, range 100,000..135,000
    assert (q.prefix_to, q.prefix_to_low, q.prefix_to_high) == (117_500, 100_000, 135_000)
    assert (q.stay_usd, q.switch_usd, q.tax_usd) == (D("0.030000"), D("0.734375"), D("0.704375"))
    assert q.warnings == ["tokenizer_estimate"]
    back = quote(OPUS_47, SONNET_46, 135_000)
    # 135,000 / 1.175 = 114,893.6 -> 114,894; range 135,000/1.35 .. 135,000
    assert (back.prefix_to, back.prefix_to_low, back.prefix_to_high) == (114_894, 100_000, 135_000)
    # 114,894 x 3.75/M = 0.4308525 -> half-even 0.430852; tax 0.3633525 -> 0.363352
    assert (back.switch_usd, back.tax_usd) == (D("0.430852"), D("0.363352"))


def test_exact_count_replaces_the_estimate():
    q = quote(SONNET_46, OPUS_47, 100_000, to_prefix_tokens=120_000)
    assert (q.prefix_to, q.prefix_to_low, q.prefix_to_high) == (120_000, 120_000, 120_000)
    assert (q.switch_usd, q.tax_usd) == (D("0.750000"), D("0.720000"))
    assert "tokenizer_estimate" not in q.warnings


@pytest.mark.parametrize(
    ("to_prefix", "new", "switch"),
    [
        (99_000, 0, "0.012375"),  # 99,000 x 0.125/M: below the 100k tier
        (100_000, 0, "0.012500"),  # exactly at the threshold: still the base tier
        (100_000, 1, "0.062501"),  # 100,001 x 0.625/M = 0.062500625: every token repriced
        (101_000, 0, "0.063125"),
    ],
)
def test_long_context_tier_crossing(to_prefix, new, switch):
    q = quote(HAIKU_45, HAIKU_55, 90_000, to_prefix_tokens=to_prefix, new_tokens=new)
    assert q.switch_usd == D(switch)


def test_first_turn_has_nothing_to_rebuild():
    q = quote(HAIKU_45, OPUS_46, 0, new_tokens=500)
    assert (q.stay_usd, q.switch_usd, q.tax_usd, q.cache_rebuild_usd) == (
        D("0.000500"), D("0.002500"), D("0.002000"), D("0.000000"),
    )  # fmt: skip
    assert (q.cache_state_from, q.cache_state_to) == ("none", "none")
    assert q.warnings == ["first_turn_free"]


def test_break_even_when_switching_to_a_cheaper_model():
    q = quote(OPUS_46, HAIKU_45, 100_000, steady_turn=TURN)
    # tax 100,000 x 1.25/M - 100,000 x 0.50/M = 0.075; saves 0.055 per warm turn -> 2 turns
    assert (q.tax_usd, q.steady_state_delta_usd, q.break_even_turns) == (D("0.075000"), D("-0.055000"), 2)


def test_cap_percent_for_plan_users():
    cap = CapModel(
        units_per_week=D(10_000_000),
        weights={
            "haiku": ClassWeights(D(1), D(1), D("0.1"), D(1)),
            "opus": ClassWeights(D(5), D(5), D("0.5"), D(5)),
        },
    )
    # switch: 100,000 written x 5 = 500,000 units; stay: 100,000 read x 0.1 = 10,000 -> 4.9% of the week
    assert quote(HAIKU_45, OPUS_46, 100_000, cap=cap).cap_percent == D("4.9000")
    assert quote(HAIKU_45, OPUS_46, 100_000, cap={"max5": cap}, plan="max5").to_json()["capPercent"] == "4.9000"
    assert quote(HAIKU_45, OPUS_46, 100_000, cap={"max5": cap}, plan="pro").cap_percent is None


def test_same_model_costs_nothing_extra():
    q = quote(SONNET_46, SONNET_46, 80_000, new_tokens=300)
    assert (q.tax_usd, q.steady_state_delta_usd, q.break_even_turns, q.ttft_penalty_ms) == (D(0), D(0), 0, 0)


def test_steady_state_uses_the_sessions_own_turn():
    # Opus -> Haiku at 100k warm: each warm turn reads 100k, writes its tail and answers.
    # A session of short turns (200 written, 50 out):
    #   Opus 0.05 + 200 x 6.25/M + 50 x 25/M = 0.05250; Haiku 0.01 + 200 x 1.25/M + 50 x 5/M = 0.01050
    short = quote(OPUS_46, HAIKU_45, 100_000, steady_turn=SteadyTurn(200, 50))
    assert short.steady_state_delta_usd == D("-0.042000")
    assert short.break_even_turns == 2  # 0.075 / 0.042 = 1.8
    # One of long ones (20,000 written, 4,000 out): saves 0.04 + 0.1 + 0.08 = 0.22 a turn.
    long = quote(OPUS_46, HAIKU_45, 100_000, steady_turn=SteadyTurn(20_000, 4_000))
    assert long.steady_state_delta_usd == D("-0.220000") and long.break_even_turns == 1


def test_steady_state_defaults_to_the_typical_turn_of_the_real_logs():
    assert SteadyTurn(write_tokens=774, output_tokens=150) == LOGGED_TURN
    # 0.04 read + 774 x 5/M written + 150 x 20/M output saved a turn
    q = quote(OPUS_46, HAIKU_45, 100_000)
    assert q.steady_state_delta_usd == D("-0.046870")
    assert q.break_even_turns == 2


def test_steady_state_counts_the_turn_in_the_new_tokenizer():
    # Haiku 4.5 -> Haiku 5.5 (30 % more tokens at the top of its range, 15 % at the point):
    # 1,000 written -> 1,150, 500 out -> 575; prefix 100,000 -> 115,000 (above 100k: long-context rates).
    q = quote(HAIKU_45, HAIKU_55, 100_000, steady_turn=TURN)
    haiku_55 = D(115_000) * D("0.05") + D(1_150) * D("0.625") + D(575) * D("2.50")
    haiku_45 = D(100_000) * D("0.10") + D(1_000) * D("1.25") + D(500) * D(5)
    assert q.steady_state_delta_usd == usd_quantize((haiku_55 - haiku_45) / D(1_000_000)) == D("-0.005844")


def test_a_measured_prefix_scales_by_the_counted_ratio_with_a_narrow_range():
    # 100k-token prefix on Haiku 4.5, of which the messages count 80,000 there and 104,000 on
    # Opus 4.7 (x1.3); the other 20,000 (system prompt, tools) were not counted: they keep the
    # tokenizers' range (x1.00 to x1.35).
    q = quote(HAIKU_45, OPUS_47, 100_000, measured=(80_000, 104_000))
    assert (q.prefix_to, q.prefix_to_low, q.prefix_to_high) == (130_000, 124_000, 131_000)
    assert "tokenizer_measured" in q.warnings and "tokenizer_estimate" not in q.warnings
    # switch: 130,000 written on Opus 4.7 at $6.25/MTok; stay: 100,000 read on Haiku at $0.10/MTok
    assert (q.switch_usd, q.stay_usd, q.tax_usd) == (D("0.812500"), D("0.010000"), D("0.802500"))
    assert q.to_json()["prefixTokens"] == {
        "from": 100_000, "to": 130_000, "toLow": 124_000, "toHigh": 131_000,
        "measured": {"from": 80_000, "to": 104_000},
    }  # fmt: skip
    # The estimate it replaces: the whole prefix in the range, its middle as the point.
    estimate = quote(HAIKU_45, OPUS_47, 100_000)
    assert (estimate.prefix_to_low, estimate.prefix_to_high) == (100_000, 135_000)
    assert "tokenizer_estimate" in estimate.warnings and estimate.to_json()["prefixTokens"]["measured"] is None


def test_a_measurement_of_nothing_falls_back_to_the_estimate():
    q = quote(HAIKU_45, OPUS_47, 100_000, measured=(0, 0))
    assert "tokenizer_estimate" in q.warnings and q.prefix_to == 117_500
