"""Cost of one request, exactly as Anthropic bills it.

    cost = input        * input_rate
         + write_5m     * write_5m_rate
         + write_1h     * write_1h_rate
         + read         * read_rate
         + output       * output_rate

Every input token is in exactly one class: a cache write replaces the plain input
charge, it is not added to it. When the request's total input (input + writes +
read) exceeds the model's long-context threshold, every token of the request is
priced at the long-context rates. Batch and US-only inference multiply every class.

Figures are exact Decimals; `billing.money` rounds them to the micro-dollar where they
are stored or sent (`usd_quantize`, `usd_str`) and writes them out for people (`usd_display`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from billing.catalog.price_snapshots import Prices
from billing.money import usd_quantize

WRITE_TTLS = ("5m", "1h")
# inference_geo values that select US-only inference (the rest, e.g. "global",
# "not_available" or "", are billed at the normal rate).
US_ONLY_GEOS = frozenset({"us"})


def _count(data: Mapping, key: str) -> int:
    value = data.get(key) or 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"usage field {key!r} must be a non-negative integer, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one request, one field per billed class."""

    input_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    cache_read_tokens: int = 0
    output_tokens: int = 0
    inference_geo: str = ""
    service_tier: str = ""

    @property
    def cache_write_tokens(self) -> int:
        return self.cache_write_5m_tokens + self.cache_write_1h_tokens

    @property
    def total_input_tokens(self) -> int:
        return self.input_tokens + self.cache_write_5m_tokens + self.cache_write_1h_tokens + self.cache_read_tokens

    @property
    def context_tokens(self) -> int:
        """What the next turn will send before its new message: this prompt plus the reply."""
        return self.total_input_tokens + self.output_tokens

    @property
    def cached_prefix_tokens(self) -> int:
        """Length of the prefix the cache holds after this request (read + written)."""
        return self.cache_read_tokens + self.cache_write_5m_tokens + self.cache_write_1h_tokens

    @classmethod
    def from_anthropic(cls, data: Mapping, *, write_ttl: str = "5m") -> Usage:
        """Parse a Messages API `usage` object (snake_case).

        The 5m/1h split comes from `cache_creation`; a write total without a split (older
        transcripts, some proxies) is taken as `write_ttl` (5m unless the caller knows better).
        """
        if write_ttl not in WRITE_TTLS:
            raise ValueError(f"write_ttl must be one of {WRITE_TTLS}")
        total_write = _count(data, "cache_creation_input_tokens")
        split = data.get("cache_creation") or {}
        w5 = _count(split, "ephemeral_5m_input_tokens")
        w1 = _count(split, "ephemeral_1h_input_tokens")
        rest = total_write - w5 - w1
        if rest > 0:  # unsplit remainder: attribute it to the stated default TTL
            if write_ttl == "1h":
                w1 += rest
            else:
                w5 += rest
        return cls(
            input_tokens=_count(data, "input_tokens"),
            cache_write_5m_tokens=w5,
            cache_write_1h_tokens=w1,
            cache_read_tokens=_count(data, "cache_read_input_tokens"),
            output_tokens=_count(data, "output_tokens"),
            inference_geo=str(data.get("inference_geo") or ""),
            service_tier=str(data.get("service_tier") or ""),
        )

    @classmethod
    def from_acp(cls, data: Mapping, *, write_ttl: str = "5m") -> Usage:
        """Parse an ACP `PromptResponse.usage` (camelCase).

        ACP reports one write figure with no TTL; `inputTokens` is the uncached input.
        """
        if write_ttl not in WRITE_TTLS:
            raise ValueError(f"write_ttl must be one of {WRITE_TTLS}")
        write = _count(data, "cachedWriteTokens")
        return cls(
            input_tokens=_count(data, "inputTokens"),
            cache_write_5m_tokens=write if write_ttl == "5m" else 0,
            cache_write_1h_tokens=write if write_ttl == "1h" else 0,
            cache_read_tokens=_count(data, "cachedReadTokens"),
            output_tokens=_count(data, "outputTokens"),
        )

    @classmethod
    def parse(cls, data: Mapping, *, write_ttl: str = "5m") -> Usage:
        """Either shape: camelCase keys mean ACP, anything else the Messages API."""
        if "inputTokens" in data or "cachedReadTokens" in data or "outputTokens" in data:
            return cls.from_acp(data, write_ttl=write_ttl)
        return cls.from_anthropic(data, write_ttl=write_ttl)

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            cache_write_5m_tokens=self.cache_write_5m_tokens + other.cache_write_5m_tokens,
            cache_write_1h_tokens=self.cache_write_1h_tokens + other.cache_write_1h_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            inference_geo=self.inference_geo,
            service_tier=self.service_tier,
        )


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """Exact USD per billed class of one request (unrounded)."""

    input: Decimal
    cache_write_5m: Decimal
    cache_write_1h: Decimal
    cache_read: Decimal
    output: Decimal
    price_label: str = ""
    long_context: bool = False

    @property
    def input_side(self) -> Decimal:
        """Everything but output: what a prompt costs before the model answers."""
        return self.input + self.cache_write_5m + self.cache_write_1h + self.cache_read

    @property
    def total(self) -> Decimal:
        return self.input_side + self.output

    def to_json(self) -> dict:
        return {
            "inputUsd": str(usd_quantize(self.input)),
            "cacheWrite5mUsd": str(usd_quantize(self.cache_write_5m)),
            "cacheWrite1hUsd": str(usd_quantize(self.cache_write_1h)),
            "cacheReadUsd": str(usd_quantize(self.cache_read)),
            "outputUsd": str(usd_quantize(self.output)),
            "totalUsd": str(usd_quantize(self.total)),
            "priceVersion": self.price_label,
            "longContext": self.long_context,
        }


def usage_cost(*, usage: Usage, prices: Prices, batch: bool = False, geo: str | None = None) -> CostBreakdown:
    """Exact cost of one request.

    `batch` also applies when the usage says `service_tier == "batch"`. `geo=None` takes
    the request's own `inference_geo`; pass "us" to force US-only pricing.
    """
    total_input = (
        usage.input_tokens + usage.cache_write_5m_tokens + usage.cache_write_1h_tokens + usage.cache_read_tokens
    )
    rates = prices.rates_for(total_input)
    c_in = usage.input_tokens * rates.input
    c_w5 = usage.cache_write_5m_tokens * rates.write_5m
    c_w1 = usage.cache_write_1h_tokens * rates.write_1h
    c_rd = usage.cache_read_tokens * rates.read
    c_out = usage.output_tokens * rates.output
    multiplier = None
    if batch or usage.service_tier == "batch":
        multiplier = prices.batch_multiplier
    if (geo if geo is not None else usage.inference_geo) in US_ONLY_GEOS and prices.geo_multiplier != 1:
        multiplier = prices.geo_multiplier if multiplier is None else multiplier * prices.geo_multiplier
    if multiplier is not None:
        c_in, c_w5, c_w1, c_rd, c_out = (c * multiplier for c in (c_in, c_w5, c_w1, c_rd, c_out))
    return CostBreakdown(
        input=c_in,
        cache_write_5m=c_w5,
        cache_write_1h=c_w1,
        cache_read=c_rd,
        output=c_out,
        price_label=prices.label,
        long_context=rates is not prices.base,
    )
