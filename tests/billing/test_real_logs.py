"""The log importer on every real transcript in data/claude-code-logs (DESIGN.md §8).

Totals are checked against a calculation written here from the raw lines and a price
table typed in below, without any billing code; the tracker must predict the cache read
within 1% on at least 95% of eligible requests; every main-chain switch is reconciled.
"""

import json
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from billing.log_import import logs_import

LOGS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "claude-code-logs"

pytestmark = pytest.mark.skipif(not LOGS.is_dir(), reason=f"real transcripts not found at {LOGS}")

# USD per million tokens: input, 5m write, 1h write, read, output. DESIGN.md §6; Opus 4.1 and
# Sonnet 4 are not in its table and come from the same pricing page.
M = Decimal(1_000_000)
PRICES = {
    "claude-haiku-4-5-20251001": ("1", "1.25", "2", "0.10", "5"),
    "claude-sonnet-4-20250514": ("3", "3.75", "6", "0.30", "15"),
    "claude-sonnet-4-5-20250929": ("3", "3.75", "6", "0.30", "15"),
    "claude-sonnet-4-6": ("3", "3.75", "6", "0.30", "15"),
    "claude-sonnet-5": ("2", "2.50", "4", "0.20", "10"),
    "claude-opus-4-1-20250805": ("15", "18.75", "30", "1.50", "75"),
    "claude-opus-4-5-20251101": ("5", "6.25", "10", "0.50", "25"),
    "claude-opus-4-6": ("5", "6.25", "10", "0.50", "25"),
    "claude-opus-4-7": ("5", "6.25", "10", "0.50", "25"),
    "claude-opus-4-8": ("5", "6.25", "10", "0.50", "25"),
    "claude-opus-5": ("5", "6.25", "10", "0.50", "25"),
}
# Long context (pricing page; §6 names only Haiku 5.5's tier): above 200k input tokens the
# whole request costs 2x on the input side and 1.5x on output for Sonnet 4 and 4.5, and for
# Sonnet 4.6 and Opus 4.6 until their 1M window became generally available at standard rates.
LONG_CONTEXT = {"claude-sonnet-4-20250514", "claude-sonnet-4-5-20250929"}
LONG_CONTEXT_UNTIL = {"claude-sonnet-4-6": "2026-03-13", "claude-opus-4-6": "2026-03-13"}


def independent_requests() -> dict:
    """One entry per billed request: lines grouped on (request id, input-side counts), so a
    retried call under a stale request id counts twice and repeated lines once; the last
    line of a request has its final output count."""
    requests: dict = {}
    for path in sorted(LOGS.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            d = json.loads(line)
            if d["type"] != "assistant" or d["message"].get("model") in ("<synthetic>", None):
                continue
            u = d["message"]["usage"]
            key = (
                d.get("requestId") or d["message"]["id"],
                u["input_tokens"],
                u["cache_creation_input_tokens"],
                u["cache_read_input_tokens"],
            )
            requests[key] = (d["message"]["model"], u, d["timestamp"])
    return requests


def independent_cost(model: str, u: dict, timestamp: str) -> tuple[Decimal, Decimal]:
    """(input-side cost, output cost) of one request."""
    p_in, p_w5, p_w1, p_rd, p_out = (Decimal(x) / M for x in PRICES[model])
    split = u.get("cache_creation") or {}
    w5, w1 = split.get("ephemeral_5m_input_tokens", 0), split.get("ephemeral_1h_input_tokens", 0)
    assert w5 + w1 == u["cache_creation_input_tokens"]
    total_in = u["input_tokens"] + u["cache_creation_input_tokens"] + u["cache_read_input_tokens"]
    k_in = k_out = Decimal(1)
    long_context = model in LONG_CONTEXT or timestamp < LONG_CONTEXT_UNTIL.get(model, "")
    if long_context and total_in > 200_000:
        k_in, k_out = Decimal(2), Decimal("1.5")
    side = (u["input_tokens"] * p_in + w5 * p_w5 + w1 * p_w1 + u["cache_read_input_tokens"] * p_rd) * k_in
    return side, u["output_tokens"] * p_out * k_out


def independent_switches() -> tuple[set, int]:
    """Main-chain model changes between consecutive (non-synthetic) assistant lines, per file."""
    found, files_with = set(), 0
    for path in sorted(LOGS.glob("*.jsonl")):
        previous, has = None, False
        for line in path.read_text().splitlines():
            d = json.loads(line)
            if d["type"] != "assistant" or d.get("isSidechain"):
                continue
            model = d["message"].get("model")
            if model in ("<synthetic>", None):
                continue
            if previous is not None and model != previous:
                found.add(d.get("requestId") or d["message"]["id"])
                has = True
            previous = model
        files_with += has
    return found, files_with


_cache: dict = {}


@pytest.fixture
def report(db):
    """One import for the module (the catalog it reads comes with the migrations)."""
    if "report" not in _cache:
        started = time.perf_counter()
        _cache["report"] = logs_import([LOGS])
        _cache["seconds"] = time.perf_counter() - started
    return _cache["report"]


def test_totals_match_an_independent_calculation(report):
    requests = independent_requests()
    side = output = Decimal(0)
    for model, usage, timestamp in requests.values():
        s, o = independent_cost(model, usage, timestamp)
        side += s
        output += o
    t = report.totals
    print(
        f"\n{len(requests)} requests, ${t.total:.6f} (independent ${side + output:.6f}),"
        f" imported in {_cache['seconds']:.1f}s"
    )
    assert t.requests == len(requests)
    assert t.output == output
    assert t.total == side + output  # exact Decimals, not rounded


def test_the_tracker_predicts_the_cache_read(report):
    t = report.totals
    share = t.within_tolerance / t.eligible
    print(
        f"\npredicted within 1%: {t.within_tolerance}/{t.eligible} = {share:.4f}, exact {t.exact};"
        f" hit rate {t.hit_rate}; misses {dict(t.miss_causes)}"
    )
    assert t.eligible > 25_000
    assert share >= 0.95
    # A session's first request is never eligible, unless the session resumes another one
    # (its file starts with the copied conversation, which warms the tracker).
    ids = {
        path.stem.split("__")[1]: {json.loads(line).get("requestId") for line in path.read_text().splitlines()} - {None}
        for path in LOGS.glob("*.jsonl")
    }
    owners = Counter(i for found in ids.values() for i in found)
    for session in report.sessions:
        if session.requests[0].eligible:
            assert any(owners[i] > 1 for i in ids[session.session_id]), session.session_id


def test_every_main_chain_switch_is_reconciled(report):
    expected, files_with = independent_switches()
    assert files_with == 43  # SOURCES.md: sessions with a main-chain switch
    switches = report.switches
    # 43 files, 38 distinct sessions: 5 resumed sessions repeat a switch of the one they continue.
    assert {s.record_id for s in switches} == expected
    assert len(switches) == len(expected) == 49
    assert len({s.session_id for s in switches}) == 38
    requests = independent_requests()
    by_id = {key[0]: value for key, value in requests.items()}
    for s in switches:
        model, usage, timestamp = by_id[s.record_id]
        side, _ = independent_cost(model, usage, timestamp)
        assert s.actual_input_usd == side.quantize(Decimal("0.000001"))
        assert s.tax_usd == s.actual_input_usd - s.stay_usd
    taxes = Counter("rebuild" if s.tax_usd > 0 else "saving" for s in switches)
    print(f"\n{len(switches)} switches: {dict(taxes)}, total tax ${sum(s.tax_usd for s in switches)}")
