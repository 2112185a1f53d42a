"""Replay a real Claude Code transcript through the tracker and the cost engine."""

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from billing.catalog.cost_engine import Usage, usage_cost
from billing.quotes.cache_tracker import CacheTracker
from tests.billing.conftest import OPUS_46

LOG = Path(__file__).parent / "data" / "kaceybui-claude-global-test__aeff6e13-0382-450b-9eb4-888b77c9563d.jsonl"


def main_chain_requests():
    """One entry per request (several lines share a requestId), main chain only."""
    seen = set()
    for line in LOG.read_text().splitlines():
        d = json.loads(line)
        if d["type"] != "assistant" or d.get("isSidechain"):
            continue
        if d["requestId"] in seen:
            continue
        seen.add(d["requestId"])
        yield d["message"]["model"], d["message"]["usage"], datetime.fromisoformat(d["timestamp"])


def test_tracker_predicts_the_cache_reads_anthropic_billed():
    tracker = CacheTracker()
    exact = total = 0
    for model, raw, at in main_chain_requests():
        usage = Usage.from_anthropic(raw)
        if tracker.current_model is not None:
            total += 1
            exact += tracker.predict(model=model, prefix_tokens=usage.cached_prefix_tokens, at=at) == (
                usage.cache_read_tokens
            )
        tracker.record(model=model, usage=usage, at=at)
    assert total == 71
    assert exact >= 69  # 69 of 71 exactly today: keep it from regressing


def test_cost_engine_matches_the_formula_line_by_line():
    total = Decimal(0)
    expected = Decimal(0)
    for _, raw, _ in main_chain_requests():
        total += usage_cost(usage=Usage.from_anthropic(raw), prices=OPUS_46).total
        split = raw.get("cache_creation") or {}
        expected += (
            raw["input_tokens"] * Decimal(5)
            + split.get("ephemeral_5m_input_tokens", 0) * Decimal("6.25")
            + split.get("ephemeral_1h_input_tokens", 0) * Decimal(10)
            + raw["cache_read_input_tokens"] * Decimal("0.50")
            + raw["output_tokens"] * Decimal(25)
        ) / 1_000_000
    assert total == expected and total > 0
