"""In-memory price snapshots: what the cost engine and the quote need, without the ORM.

A `Prices` is built once from a `PriceVersion` row (or by hand in tests and the
benchmark) and is immutable, so it can be cached per process and shared freely.
Rates are kept per token, already divided by a million, so the hot path is one
multiplication per token class.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from billing.money import PER_MTOK

ONE = Decimal(1)


def _pico_per_token(per_mtok: Decimal) -> int:
    """A per-MTok price in picodollars (1e-12 USD) per token: exact, since catalog prices have
    at most six decimal places (PriceVersion's fields)."""
    pico = per_mtok * PER_MTOK
    if pico != pico.to_integral_value():
        raise ValueError(f"price {per_mtok} per MTok has more than six decimal places")
    return int(pico)


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per token for each billed class (per-MTok price / 1,000,000), and the same rates as
    integer picodollars per token, for the quote's hot path (sums of exact integers)."""

    input: Decimal
    write_5m: Decimal
    write_1h: Decimal
    read: Decimal
    output: Decimal
    input_pico: int = 0
    write_5m_pico: int = 0
    write_1h_pico: int = 0
    read_pico: int = 0
    output_pico: int = 0

    @classmethod
    def per_mtok(cls, *, input, write_5m, write_1h, read, output) -> Rates:  # noqa: A002
        per_mtok = [Decimal(price) for price in (input, write_5m, write_1h, read, output)]
        return cls(*(price / PER_MTOK for price in per_mtok), *(_pico_per_token(price) for price in per_mtok))


@dataclass(frozen=True, slots=True)
class Prices:
    """One price version of one API model, plus the model facts a quote needs."""

    api_model: str
    label: str
    family: str
    base: Rates
    min_cacheable_tokens: int | None = None
    # A request whose total input exceeds the threshold is billed entirely at `long_context`.
    long_context_threshold: int | None = None
    long_context: Rates | None = None
    batch_multiplier: Decimal = Decimal("0.5")
    geo_multiplier: Decimal = ONE
    tokenizer_family: str = "legacy"
    tokenizer_ratio_low: Decimal = ONE
    tokenizer_ratio_high: Decimal = ONE
    # The ratios in thousandths, so token estimates are integer arithmetic (derived).
    tokenizer_low_k: int = 0
    tokenizer_high_k: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "tokenizer_low_k", int(self.tokenizer_ratio_low * 1000))
        object.__setattr__(self, "tokenizer_high_k", int(self.tokenizer_ratio_high * 1000))
        if not 0 < self.tokenizer_low_k <= self.tokenizer_high_k:
            raise ValueError("tokenizer ratios must satisfy 0 < low <= high")

    def rates_for(self, total_input_tokens: int) -> Rates:
        threshold = self.long_context_threshold
        if threshold is not None and total_input_tokens > threshold and self.long_context is not None:
            return self.long_context
        return self.base

    def is_cacheable(self, prompt_tokens: int) -> bool:
        return prompt_cacheable(prompt_tokens, self.min_cacheable_tokens)


def prompt_cacheable(prompt_tokens: int, minimum: int | None) -> bool:
    """Whether a prompt this long can be cached under a model's minimum cacheable length.

    An unpublished minimum is treated as "no minimum": the request is still billed by its real
    usage later; the quote just cannot warn about it."""
    return prompt_tokens > 0 and (minimum is None or prompt_tokens >= minimum)


def prices_make(
    *,
    api_model: str,
    input,  # noqa: A002
    write_5m,
    write_1h,
    read,
    output,
    label: str = "",
    family: str = "",
    min_cacheable_tokens: int | None = None,
    long_context_threshold: int | None = None,
    long_context: dict | None = None,
    batch_multiplier="0.5",
    geo_multiplier="1",
    tokenizer_family: str = "legacy",
    tokenizer_ratio_low="1",
    tokenizer_ratio_high="1",
) -> Prices:
    """Build a `Prices` from per-MTok figures (strings or Decimals, never floats)."""
    return Prices(
        api_model=api_model,
        label=label or api_model,
        family=family,
        base=Rates.per_mtok(input=input, write_5m=write_5m, write_1h=write_1h, read=read, output=output),
        min_cacheable_tokens=min_cacheable_tokens,
        long_context_threshold=long_context_threshold,
        long_context=Rates.per_mtok(**long_context) if long_context else None,
        batch_multiplier=Decimal(batch_multiplier),
        geo_multiplier=Decimal(geo_multiplier),
        tokenizer_family=tokenizer_family,
        tokenizer_ratio_low=Decimal(tokenizer_ratio_low),
        tokenizer_ratio_high=Decimal(tokenizer_ratio_high),
    )


def prices_from_version(version) -> Prices:
    """Snapshot a `PriceVersion` row (with its `api_model`) into an immutable `Prices`."""
    api_model = version.api_model
    long_context = None
    if version.long_context_threshold is not None and version.long_context_input is not None:
        long_context = {
            "input": version.long_context_input,
            "write_5m": version.long_context_cache_write_5m,
            "write_1h": version.long_context_cache_write_1h,
            "read": version.long_context_cache_read,
            "output": version.long_context_output,
        }
    return prices_make(
        api_model=api_model.api_id,
        label=version.label,
        family=api_model.family,
        input=version.input,
        write_5m=version.cache_write_5m,
        write_1h=version.cache_write_1h,
        read=version.cache_read,
        output=version.output,
        min_cacheable_tokens=version.min_cacheable_tokens,
        long_context_threshold=version.long_context_threshold if long_context else None,
        long_context=long_context,
        batch_multiplier=version.batch_multiplier,
        geo_multiplier=version.geo_multiplier,
        tokenizer_family=api_model.tokenizer_family,
        tokenizer_ratio_low=api_model.tokenizer_ratio_low,
        tokenizer_ratio_high=api_model.tokenizer_ratio_high,
    )
