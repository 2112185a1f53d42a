"""The log importer on every real transcript in data/claude-code-logs (DESIGN.md §8).

Totals and switch taxes are checked against calculations written here from the raw lines and
a price table typed in below (DESIGN.md §6 and its dated rules), without any billing code:
requests are grouped their own way, priced with their own tier rule, and the cost of staying
on the previous model is rebuilt from the transcript. The tracker must predict the cache read
within 1% on at least 97% of eligible requests; every main-chain switch is reconciled.
"""

import json
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import pytest

from billing.usage.transcript_import import logs_import

LOGS = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "claude-code-logs"

pytestmark = pytest.mark.skipif(not LOGS.is_dir(), reason=f"real transcripts not found at {LOGS}")

# What an independent calculation of the shared logs comes to (DESIGN.md §6 prices, the 1M
# window of Sonnet 4.6 / Opus 4.6 at standard rates from 2026-03-13, each request's largest
# output): the figure the import must reproduce to the micro-dollar.
EXPECTED_TOTAL = Decimal("3165.263697")
EXPECTED_REQUESTS = 31_208

# USD per million tokens: input, 5m write, 1h write, read, output; minimum cacheable prompt.
# DESIGN.md §6; Opus 4.1 and Sonnet 4 are not in its table and come from the same pricing page.
M = Decimal(1_000_000)
PRICES = {
    "claude-haiku-4-5-20251001": (("1", "1.25", "2", "0.10", "5"), 4096),
    "claude-sonnet-4-20250514": (("3", "3.75", "6", "0.30", "15"), 1024),
    "claude-sonnet-4-5-20250929": (("3", "3.75", "6", "0.30", "15"), 1024),
    "claude-sonnet-4-6": (("3", "3.75", "6", "0.30", "15"), 1024),
    "claude-sonnet-5": (("2", "2.50", "4", "0.20", "10"), 1024),
    "claude-opus-4-1-20250805": (("15", "18.75", "30", "1.50", "75"), 1024),
    "claude-opus-4-5-20251101": (("5", "6.25", "10", "0.50", "25"), 4096),
    "claude-opus-4-6": (("5", "6.25", "10", "0.50", "25"), 4096),
    "claude-opus-4-7": (("5", "6.25", "10", "0.50", "25"), 2048),
    "claude-opus-4-8": (("5", "6.25", "10", "0.50", "25"), 1024),
    "claude-opus-5": (("5", "6.25", "10", "0.50", "25"), 512),
}
# Long context: above 200k input tokens the whole request costs 2x on the input side and 1.5x
# on output. Sonnet 4 and 4.5 keep it (1M beta); Sonnet 4.6 and Opus 4.6 serve the 1M window
# at their standard rates since it became generally available.
LONG_CONTEXT_ALWAYS = {"claude-sonnet-4-20250514", "claude-sonnet-4-5-20250929"}
LONG_CONTEXT_UNTIL = {
    "claude-sonnet-4-6": datetime(2026, 3, 13, tzinfo=UTC),
    "claude-opus-4-6": datetime(2026, 3, 13, tzinfo=UTC),
}
TTL = {"5m": timedelta(minutes=5), "1h": timedelta(hours=1)}


@dataclass
class Request:
    model: str
    at: datetime  # its first line
    usage: dict  # the line with the largest output
    sidechain: bool

    @property
    def split(self) -> tuple[int, int, int, int]:
        """(input, 5m write, 1h write, read)."""
        u = self.usage
        parts = u.get("cache_creation") or {}
        w5, w1 = parts.get("ephemeral_5m_input_tokens", 0), parts.get("ephemeral_1h_input_tokens", 0)
        assert w5 + w1 == u["cache_creation_input_tokens"]
        return u["input_tokens"], w5, w1, u["cache_read_input_tokens"]

    @property
    def prompt(self) -> int:
        return sum(self.split)


def _key(d: dict) -> tuple:
    """A billed call: its request id (a gateway without one: its message id) and what it read and
    wrote, so a retry under a stale request id counts twice and repeated lines once."""
    u = d["message"]["usage"]
    ids = d.get("requestId") or d["message"]["id"]
    return ids, u["input_tokens"], u["cache_creation_input_tokens"], u["cache_read_input_tokens"]


def _file_requests(path: Path) -> dict[tuple, Request]:
    found: dict[tuple, Request] = {}
    for line in path.read_text().splitlines():
        d = json.loads(line)
        if d["type"] != "assistant" or d["message"].get("model") in ("<synthetic>", None):
            continue
        key, usage = _key(d), d["message"]["usage"]
        at = datetime.fromisoformat(d["timestamp"])
        current = found.get(key)
        if current is None:
            found[key] = Request(d["message"]["model"], at, usage, bool(d.get("isSidechain")))
            continue
        if usage["output_tokens"] > current.usage["output_tokens"]:
            current.usage = usage
        current.at = min(current.at, at)
        current.sidechain = current.sidechain and bool(d.get("isSidechain"))
    return found


def independent_requests() -> dict[tuple, Request]:
    """One entry per billed request over every file: a resumed session's copy is the same
    request, with the largest output any copy reports."""
    requests: dict[tuple, Request] = {}
    for path in sorted(LOGS.glob("*.jsonl")):
        for key, req in _file_requests(path).items():
            current = requests.get(key)
            if current is None or req.usage["output_tokens"] > current.usage["output_tokens"]:
                requests[key] = req
    return requests


def _multipliers(model: str, prompt: int, at: datetime) -> tuple[Decimal, Decimal]:
    until = LONG_CONTEXT_UNTIL.get(model)
    if prompt > 200_000 and (model in LONG_CONTEXT_ALWAYS or (until is not None and at < until)):
        return Decimal(2), Decimal("1.5")
    return Decimal(1), Decimal(1)


def independent_cost(req: Request) -> tuple[Decimal, Decimal]:
    """(input-side cost, output cost) of one request."""
    p_in, p_w5, p_w1, p_rd, p_out = (Decimal(x) / M for x in PRICES[req.model][0])
    plain, w5, w1, read = req.split
    k_in, k_out = _multipliers(req.model, req.prompt, req.at)
    side = (plain * p_in + w5 * p_w5 + w1 * p_w1 + read * p_rd) * k_in
    return side, req.usage["output_tokens"] * p_out * k_out


def independent_stays() -> dict[str, Decimal]:
    """Per main-chain switch (by request id): what its prompt would have cost on the previous
    model. The conversation the switch request carried over (the previous request's prompt and
    reply), plus what was new, read from the previous model's cache where that request left it
    warm, the rest written at the session's write TTL (the TTL of its latest write)."""
    stays = {}
    for path in sorted(LOGS.glob("*.jsonl")):
        main = [r for r in sorted(_file_requests(path).items(), key=lambda kv: kv[1].at) if not r[1].sidechain]
        ttl = "5m"
        for (key, req), (_, prev) in zip(main[1:], main, strict=False):
            plain, w5, w1, read = prev.split
            if w5 or w1:
                ttl = "5m" if w5 else "1h"
            if req.model == prev.model:
                continue
            context = prev.prompt + prev.usage["output_tokens"]
            prompt = context + max(req.prompt - context, 0)
            gap = req.at - prev.at
            # The previous request's entries: what it read (refreshed), then what it wrote (1h
            # breakpoints come before 5m ones).
            entries = [(read, TTL[ttl])]
            if w1:
                entries.append((read + w1, TTL["1h"]))
            if w5:
                entries.append((read + w1 + w5, TTL["5m"]))
            warm = max((n for n, life in entries if gap < life and n <= context), default=0)
            (p_in, p_w5, p_w1, p_rd, _), minimum = PRICES[prev.model]
            k_in, _ = _multipliers(prev.model, prompt, req.at)
            if prompt < minimum:
                cost = prompt * Decimal(p_in)
            else:
                cost = (prompt - warm) * Decimal(p_w5 if ttl == "5m" else p_w1) + warm * Decimal(p_rd)
            stays[key[0]] = (cost * k_in / M).quantize(Decimal("0.000001"), ROUND_HALF_EVEN)
    return stays


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
    for req in requests.values():
        s, o = independent_cost(req)
        side += s
        output += o
    t = report.totals
    print(
        f"\n{len(requests)} requests, ${t.total:.6f} (independent ${side + output:.6f}),"
        f" imported in {_cache['seconds']:.1f}s"
    )
    assert len(requests) == EXPECTED_REQUESTS
    assert (side + output).quantize(Decimal("0.000001")) == EXPECTED_TOTAL
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
    assert share >= 0.97
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
    by_id = {key[0]: req for key, req in independent_requests().items()}
    stays = independent_stays()
    for s in switches:
        side, _ = independent_cost(by_id[s.record_id])
        assert s.actual_input_usd == side.quantize(Decimal("0.000001")), s.record_id
        assert s.stay_usd == stays[s.record_id], s.record_id
    taxes = Counter("rebuild" if s.tax_usd > 0 else "saving" for s in switches)
    print(f"\n{len(switches)} switches: {dict(taxes)}, total tax ${sum(s.tax_usd for s in switches)}")
