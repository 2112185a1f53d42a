"""Quote engine throughput: quotes/s of `quote_compute` and records/s of `usage_cost`, in process.

    .venv/bin/python bench/quote_engine.py [--seconds 2] [--write-docs]

No ORM and no Django setup: the hot path takes prebuilt `Prices` and `CacheSnapshot`s,
as the API does after its one catalog read. Goal: >= 100,000 quotes/s on one core.
"""

import argparse
import os
import platform
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.docs import write_section  # noqa: E402
from billing.catalog.cost_engine import Usage, usage_cost  # noqa: E402
from billing.catalog.price_snapshots import prices_make  # noqa: E402
from billing.quotes.cache_tracker import CacheTracker, cache_snapshot_warm  # noqa: E402
from billing.quotes.engine import quote_compute  # noqa: E402

GOAL = 100_000
NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
HAIKU = prices_make(api_model="claude-haiku-4-5", family="haiku", input="1", write_5m="1.25", write_1h="2",
                    read="0.10", output="5", min_cacheable_tokens=4096)  # fmt: skip
OPUS = prices_make(api_model="claude-opus-4-6", family="opus", input="5", write_5m="6.25", write_1h="10",
                   read="0.50", output="25", min_cacheable_tokens=4096, geo_multiplier="1.1")  # fmt: skip
OPUS_47 = prices_make(api_model="claude-opus-4-7", family="opus", input="5", write_5m="6.25", write_1h="10",
                      read="0.50", output="25", min_cacheable_tokens=2048, tokenizer_family="claude-2026",
                      tokenizer_ratio_high="1.35")  # fmt: skip


def scenarios():
    warm = cache_snapshot_warm(model=HAIKU.api_model, prefix_tokens=100_000, idle_seconds=30, now=NOW)
    cold = cache_snapshot_warm(model=HAIKU.api_model, prefix_tokens=100_000, idle_seconds=900, now=NOW)
    t = CacheTracker()
    t.record(
        model=HAIKU.api_model,
        usage=Usage(cache_write_5m_tokens=50_000, output_tokens=900),
        at=NOW - timedelta(seconds=200),
    )
    t.record(
        model=OPUS.api_model,
        usage=Usage(cache_write_5m_tokens=51_000, output_tokens=900),
        at=NOW - timedelta(seconds=90),
    )  # noqa: E501
    back = t.snapshot()
    return [
        dict(from_model=HAIKU.api_model, to_model=OPUS.api_model, snapshot=warm, prices_from=HAIKU, prices_to=OPUS),
        dict(from_model=HAIKU.api_model, to_model=OPUS_47.api_model, snapshot=cold, prices_from=HAIKU, prices_to=OPUS_47, new_tokens=300),  # noqa: E501
        dict(from_model=OPUS.api_model, to_model=HAIKU.api_model, snapshot=back, prices_from=OPUS, prices_to=HAIKU,
             recent_switches=[(NOW - timedelta(seconds=90), HAIKU.api_model, OPUS.api_model)]),
    ]  # fmt: skip


def rate(fn, seconds):
    n, batch = 0, 1000
    start = time.perf_counter()
    while True:
        fn(batch)
        n += batch
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed


def bench_quotes(seconds):
    cases = scenarios()

    def run(k):
        for i in range(k):
            quote_compute(now=NOW, **cases[i % 3])

    return rate(run, seconds)


def bench_quote_json(seconds):
    cases = scenarios()

    def run(k):
        for i in range(k):
            quote_compute(now=NOW, **cases[i % 3]).to_json()

    return rate(run, seconds)


def bench_costs(seconds):
    usages = [
        Usage(input_tokens=10, cache_write_1h_tokens=4697, cache_read_tokens=18294, output_tokens=1),
        Usage(input_tokens=3, cache_write_5m_tokens=1200, cache_read_tokens=120_000, output_tokens=250),
        Usage(input_tokens=5000, output_tokens=800, inference_geo="us"),
    ]

    def run(k):
        for i in range(k):
            usage_cost(usage=usages[i % 3], prices=OPUS)

    return rate(run, seconds)


def bench_parse_and_cost(seconds):
    raw = {
        "input_tokens": 10, "cache_creation_input_tokens": 4697, "cache_read_input_tokens": 18294,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 4697},
        "output_tokens": 1, "service_tier": "standard", "inference_geo": "not_available",
    }  # fmt: skip

    def run(k):
        for _ in range(k):
            usage_cost(usage=Usage.from_anthropic(raw), prices=HAIKU)

    return rate(run, seconds)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    q = bench_quotes(args.seconds)
    qj = bench_quote_json(args.seconds)
    c = bench_costs(args.seconds)
    pc = bench_parse_and_cost(args.seconds)
    lines = [
        f"`bench/quote_engine.py`, one process, Python {platform.python_version()} on {platform.machine()} "
        f"({time.strftime('%Y-%m-%d')}); prebuilt prices and snapshots, no ORM.",
        "",
        "| what | per second | goal |",
        "|---|---|---|",
        f"| `quote_compute` (warm, cold + tokenizer estimate, switch-back mix) | {q:,.0f} | {GOAL:,} "
        f"({q / GOAL:.2f}x) |",
        f"| `quote_compute` + `to_json()` | {qj:,.0f} | |",
        f"| `usage_cost` (one usage record) | {c:,.0f} | |",
        f"| `Usage.from_anthropic` + `usage_cost` | {pc:,.0f} | |",
        "",
        f"Load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; on a shared machine",
        "the figures move by a factor of two between runs, so compare runs made side by side.",
        "The hot path: each price version's rates are kept as exact integer picodollars per token",
        "(catalog prices have at most six decimals per MTok), so a quote's dozen prompt costs are integer",
        "sums; each figure becomes a Decimal once, rounded half-to-even to the micro-dollar. What is left",
        "is Python call overhead: on this machine a bare function call costs ~0.1 µs and a quote is ~13 µs.",
    ]
    print("\n".join(lines))
    if args.write_docs:
        write_section("Quote engine", "\n".join(lines))


if __name__ == "__main__":
    main()
