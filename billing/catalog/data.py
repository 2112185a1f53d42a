"""The price catalog as data: every row of DESIGN.md §6, each citing its source.

Loaded by migration 0003 (so a fresh `migrate` has prices) and re-runnable with
`catalog_sync`, which only adds what is missing: rows edited in the admin are left
alone, and a price change is a new version with a later `effective_from`. Migration
0011 brings databases loaded from an earlier catalog up to this one (`catalog_correct`).

Prices are USD per million tokens (input / 5m write / 1h write / read / output), every
column as the pricing page states it, never derived from a multiplier; minimum cacheable
lengths from https://platform.claude.com/docs/en/build-with-claude/prompt-caching. Effective dates
are release dates from each model's page on platform.claude.com (or the snapshot date
of the dated id for the models that have one); the row's `source` names the page.
`price_version_for` bills a request dated before a model's first version at that version.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import UTC, datetime
from decimal import Decimal
from typing import NamedTuple

PRICING_URL = "https://platform.claude.com/docs/en/about-claude/pricing"
MODEL_CONFIG_URL = "https://code.claude.com/docs/en/model-config"
MODELS_URL = "https://platform.claude.com/docs/en/about-claude/models/overview"
# Anthropic's announcement of 2026-03-13 as reported (the model pages now list both 4.6 models
# with a 1M window at their standard prices, without a date).
LONG_CONTEXT_GA_URL = "https://getaibook.com/news/claudes-1m-context-just-got-practical-for-coding-and-agent-workflows"
CLAUDE_CODE_CATALOG = (
    "Claude Code 2.1.316's model catalog (aliases and provider_alias_targets), bundled with "
    "@anthropic-ai/claude-agent-sdk 0.3.316, which @agentclientprotocol/claude-agent-acp 0.100.0 "
    "(package.json) runs"
)


def model_page(slug: str) -> str:
    return f"https://platform.claude.com/docs/en/models/{slug}/overview"


# Tokenizers: count of the same text relative to the legacy tokenizer (Claude 4.6 and earlier).
# Opus 4.7 introduced a tokenizer that counts up to ~35% more; the models released since use
# it (Haiku 5.5's page: "the same newer tokenizer as Claude 4.7 and later models", about 30%
# more tokens than Haiku 4.5; Sonnet 5's page announces the new tokenizer; the models
# overview gives Fable 5 Opus 4.7's words per token). Sonnet 5.5 and Opus 5.5 follow their
# predecessors.
LEGACY = ("legacy", "1.00", "1.00")
TOKENIZER_2026 = ("claude-2026", "1.00", "1.35")

M = 1_000_000
K200 = 200_000
# Sonnet 4 / 4.5 above 200k input tokens (1M beta), and Sonnet 4.6 / Opus 4.6 until the 1M
# window became generally available at standard rates on 2026-03-13.
SONNET_4X_LONG = {"threshold": K200, "prices": ("6", "7.50", "12", "0.60", "22.50")}
OPUS_46_LONG = {"threshold": K200, "prices": ("10", "12.50", "20", "1.00", "37.50")}
HAIKU_55_LONG = {"threshold": 100_000, "prices": ("0.50", "0.625", "1.00", "0.05", "2.50")}


def _d(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


class Model(NamedTuple):
    api_id: str
    name: str
    family: str
    tokenizer: tuple[str, str, str]
    context_window: int
    long_context_window: int | None  # the 1M option of a 200k model, where it has one
    source: str


MODELS = [
    Model("claude-haiku-4-5", "Claude Haiku 4.5", "haiku", LEGACY, K200, None, model_page("haiku-4-5")),
    Model("claude-haiku-5-5", "Claude Haiku 5.5", "haiku", TOKENIZER_2026, M, None, model_page("haiku-5-5")),
    Model("claude-sonnet-4-0", "Claude Sonnet 4", "sonnet", LEGACY, K200, M, MODELS_URL),
    Model("claude-sonnet-4-5", "Claude Sonnet 4.5", "sonnet", LEGACY, K200, M, model_page("sonnet-4-5")),
    Model("claude-sonnet-4-6", "Claude Sonnet 4.6", "sonnet", LEGACY, M, None, model_page("sonnet-4-6")),
    Model("claude-sonnet-5", "Claude Sonnet 5", "sonnet", TOKENIZER_2026, M, None, model_page("sonnet-5")),
    Model("claude-sonnet-5-5", "Claude Sonnet 5.5", "sonnet", TOKENIZER_2026, M, None, model_page("sonnet-5-5")),
    Model("claude-opus-4-1", "Claude Opus 4.1", "opus", LEGACY, K200, None, MODELS_URL),
    Model("claude-opus-4-5", "Claude Opus 4.5", "opus", LEGACY, K200, None, MODELS_URL),
    Model("claude-opus-4-6", "Claude Opus 4.6", "opus", LEGACY, M, None, model_page("opus-4-6")),
    Model("claude-opus-4-7", "Claude Opus 4.7", "opus", TOKENIZER_2026, M, None, MODELS_URL),
    Model("claude-opus-4-8", "Claude Opus 4.8", "opus", TOKENIZER_2026, M, None, model_page("opus-4-8")),
    Model("claude-opus-5", "Claude Opus 5", "opus", TOKENIZER_2026, M, None, model_page("opus-5")),
    Model("claude-opus-5-5", "Claude Opus 5.5", "opus", TOKENIZER_2026, M, None, model_page("opus-5-5")),
    Model("claude-fable-5", "Claude Fable 5", "fable", TOKENIZER_2026, M, None, model_page("fable-5")),
    Model("claude-fable-5-1", "Claude Fable 5.1", "fable", TOKENIZER_2026, M, None, model_page("fable-5-1")),
]

# Dated ids seen in real Claude Code transcripts -> the undated model whose prices apply.
DATED_IDS = {
    "claude-haiku-4-5-20251001": "claude-haiku-4-5",
    "claude-sonnet-4-20250514": "claude-sonnet-4-0",
    "claude-sonnet-4-5-20250929": "claude-sonnet-4-5",
    "claude-opus-4-1-20250805": "claude-opus-4-1",
    "claude-opus-4-5-20251101": "claude-opus-4-5",
}


class Price(NamedTuple):
    api_id: str
    since: str
    prices: tuple[str, str, str, str, str]  # in, 5m write, 1h write, read, out
    min_cacheable: int | None  # None: not published
    long_tier: dict | None
    geo: str  # US-only inference multiplier (Opus 4.6 and newer)
    source: str
    notes: str


SONNET_4 = ("3", "3.75", "6", "0.30", "15")
SONNET_5 = ("2", "2.50", "4", "0.20", "10")
OPUS_4 = ("5", "6.25", "10", "0.50", "25")
FABLE = ("10", "12.50", "20", "1.00", "50")

PRICES = [
    Price("claude-haiku-4-5", "2025-10-01", ("1", "1.25", "2", "0.10", "5"), 4096, None, "1", PRICING_URL,
          "Snapshot date of claude-haiku-4-5-20251001."),
    Price("claude-haiku-5-5", "2026-10-07", ("0.10", "0.125", "0.20", "0.01", "0.50"), None, HAIKU_55_LONG, "1.1",
          model_page("haiku-5-5"),
          "Released 2026-10-07. Minimum cacheable length not published. Above 100k input tokens the whole "
          "request is billed at the higher tier."),
    Price("claude-sonnet-4-0", "2025-05-14", SONNET_4, 1024, SONNET_4X_LONG, "1", PRICING_URL,
          "Sonnet 4; snapshot date of claude-sonnet-4-20250514. Long-context rates apply with the 1M window."),
    Price("claude-sonnet-4-5", "2025-09-29", SONNET_4, 1024, SONNET_4X_LONG, "1", PRICING_URL,
          "Snapshot date of claude-sonnet-4-5-20250929. Long-context rates apply with the 1M window."),
    Price("claude-sonnet-4-6", "2026-02-17", SONNET_4, 1024, SONNET_4X_LONG, "1.1", PRICING_URL,
          "Release date; first seen in the transcripts the same day. Long-context rates above 200k input "
          "tokens while the 1M window was in beta."),
    Price("claude-sonnet-4-6", "2026-03-13", SONNET_4, 1024, None, "1.1", LONG_CONTEXT_GA_URL,
          "1M window generally available: standard rates across the whole window, no long-context premium."),
    Price("claude-sonnet-5", "2026-06-30", SONNET_5, 1024, None, "1.1", model_page("sonnet-5"),
          "Released 2026-06-30; first seen in the transcripts 2026-07-03."),
    Price("claude-sonnet-5-5", "2026-09-28", SONNET_5, 512, None, "1.1", model_page("sonnet-5-5"),
          "Released 2026-09-28 (the model page in the stored copy gives no date; Runware's model page does)."),
    Price("claude-sonnet-5-5", "2026-10-07", ("2", "2.50", "4", "0.10", "10"), 512, None, "1.1", PRICING_URL,
          "Cache read lowered to $0.10/MTok from 2026-10-07 (reported from the pricing page on 2026-10-24 "
          "by https://github.com/kurofune/claudit/releases/tag/v1.9.2; the model page still says $0.20)."),
    Price("claude-opus-4-1", "2025-08-05", ("15", "18.75", "30", "1.50", "75"), 1024, None, "1", PRICING_URL,
          "Snapshot date of claude-opus-4-1-20250805."),
    Price("claude-opus-4-5", "2025-11-01", OPUS_4, 4096, None, "1", PRICING_URL,
          "Snapshot date of claude-opus-4-5-20251101."),
    Price("claude-opus-4-6", "2026-02-05", OPUS_4, 4096, OPUS_46_LONG, "1.1", model_page("opus-4-6"),
          "Release date. Long-context rates above 200k input tokens while the 1M window was in beta."),
    Price("claude-opus-4-6", "2026-03-13", OPUS_4, 4096, None, "1.1", LONG_CONTEXT_GA_URL,
          "1M window generally available: standard rates across the whole window, no long-context premium."),
    Price("claude-opus-4-7", "2026-04-16", OPUS_4, 2048, None, "1.1", MODELS_URL,
          "Release date; first seen in the transcripts on 2026-04-19."),
    Price("claude-opus-4-8", "2026-05-28", OPUS_4, 1024, None, "1.1", model_page("opus-4-8"),
          "Released 2026-05-28; first seen in the transcripts 2026-07-22."),
    Price("claude-opus-5", "2026-07-24", OPUS_4, 512, None, "1.1", model_page("opus-5"),
          "Released 2026-07-24; first seen in the transcripts 2026-07-29."),
    Price("claude-opus-5-5", "2026-09-22", ("4", "5", "8", "0.20", "20"), 512, None, "1.1", model_page("opus-5-5"),
          "Released 2026-09-22. Read at 0.05x input, from the model page."),
    Price("claude-fable-5", "2026-06-09", FABLE, 512, None, "1.1", model_page("fable-5"), "Released 2026-06-09."),
    Price("claude-fable-5-1", "2026-09-01", ("10", "12.50", "20", "0.25", "50"), 512, None, "1.1",
          model_page("fable-5-1"), "Released 2026-09-01. Read at 0.025x input, from the pricing page."),
]  # fmt: skip

# Versions an earlier catalog shipped with placeholder dates (first use in the transcripts, or
# a guess). `catalog_correct` deletes them where no quote, ledger or usage row refers to them;
# the dated versions above replace them.
SUPERSEDED_VERSIONS = (
    "claude-haiku-5-5@2026-08-15",
    "claude-sonnet-5@2026-07-03",
    "claude-sonnet-5-5@2026-08-15",
    "claude-opus-4-8@2026-07-22",
    "claude-opus-5@2026-07-29",
    "claude-opus-5-5@2026-08-15",
)


class Alias(NamedTuple):
    alias: str
    since: str
    api_id: str
    source: str


# What the picker's ids (DESIGN.md §4) meant from each date on, as Claude Code resolves them
# on the Anthropic API (other providers and gateways lag behind). This is the fallback: a
# session learns its own map from its agent. `opus`, `sonnet` and `haiku` resolve to the
# newest model of their family (model-config page), so each moves on its model's release
# date; `fable` likewise. `default` depends on the account: Sonnet for API keys and Pro,
# Opus for Max and Team; the table follows Sonnet, the API-key case. The `[1m]` ids follow
# their family with the 1M window.
_NEWEST = f"{MODEL_CONFIG_URL} (aliases resolve to the newest model of their family)"
ALIASES = [
    Alias("haiku", "2026-02-17", "claude-haiku-4-5", MODEL_CONFIG_URL),
    Alias("haiku", "2026-10-07", "claude-haiku-5-5", f"{_NEWEST}; {CLAUDE_CODE_CATALOG}"),
    Alias("fable", "2026-06-09", "claude-fable-5", _NEWEST),
    Alias("fable", "2026-09-01", "claude-fable-5-1", f"{_NEWEST}; {CLAUDE_CODE_CATALOG}"),
]
for _alias in ("sonnet", "sonnet[1m]", "default"):
    ALIASES += [
        Alias(_alias, "2026-02-17", "claude-sonnet-4-6", f"{MODEL_CONFIG_URL}; transcripts from 2026-02-17"),
        Alias(_alias, "2026-06-30", "claude-sonnet-5", f"{_NEWEST}; transcripts from 2026-07-03"),
        Alias(_alias, "2026-09-28", "claude-sonnet-5-5", f"{_NEWEST}; {CLAUDE_CODE_CATALOG}"),
    ]
for _alias in ("opus", "opus[1m]"):
    ALIASES += [
        Alias(_alias, "2026-02-17", "claude-opus-4-6", MODEL_CONFIG_URL),
        Alias(_alias, "2026-04-16", "claude-opus-4-7", f"{_NEWEST}; transcripts on 2026-04-19"),
        Alias(_alias, "2026-05-28", "claude-opus-4-8", f"{_NEWEST}; transcripts from 2026-07-22"),
        Alias(_alias, "2026-07-24", "claude-opus-5", f"{_NEWEST}; transcripts from 2026-07-29"),
        Alias(_alias, "2026-09-22", "claude-opus-5-5", f"{_NEWEST}; {CLAUDE_CODE_CATALOG}"),
    ]
ALIAS_LONG_CONTEXT = frozenset({"sonnet[1m]", "opus[1m]"})


def _model_fields(model: Model) -> dict:
    tok, low, high = model.tokenizer
    return {
        "display_name": model.name,
        "family": model.family,
        "tokenizer_family": tok,
        "tokenizer_ratio_low": Decimal(low),
        "tokenizer_ratio_high": Decimal(high),
        "context_window": model.context_window,
        "long_context_window": model.long_context_window,
        "notes": f"Source: {model.source}",
    }


def _dated_fields(dated: str, base) -> dict:
    return {
        "display_name": f"{base.display_name} ({dated.rsplit('-', 1)[1]})",
        "family": base.family,
        "canonical": base,
        "tokenizer_family": base.tokenizer_family,
        "tokenizer_ratio_low": base.tokenizer_ratio_low,
        "tokenizer_ratio_high": base.tokenizer_ratio_high,
        "context_window": base.context_window,
        "long_context_window": base.long_context_window,
    }


def _price_fields(row: Price) -> dict:
    inp, w5, w1, rd, out = (Decimal(v) for v in row.prices)
    fields = {
        "label": f"{row.api_id}@{row.since}",
        "input": inp,
        "cache_write_5m": w5,
        "cache_write_1h": w1,
        "cache_read": rd,
        "output": out,
        "min_cacheable_tokens": row.min_cacheable,
        "batch_multiplier": Decimal("0.5"),
        "geo_multiplier": Decimal(row.geo),
        "source_url": row.source,
        "notes": row.notes,
    }
    if row.long_tier:
        li, lw5, lw1, lrd, lout = (Decimal(v) for v in row.long_tier["prices"])
        fields.update(
            long_context_threshold=row.long_tier["threshold"],
            long_context_input=li,
            long_context_cache_write_5m=lw5,
            long_context_cache_write_1h=lw1,
            long_context_cache_read=lrd,
            long_context_output=lout,
        )
    return fields


def catalog_sync(*, api_model_cls, model_alias_cls, price_version_cls) -> dict[str, int]:
    """Add every catalog row that is missing; never change an existing one.

    Takes the model classes so that the data migration can pass its historical models.
    Returns how many rows of each kind were created.
    """
    created = {"models": 0, "aliases": 0, "prices": 0}
    by_id = {}
    for model in MODELS:
        by_id[model.api_id], made = api_model_cls.objects.get_or_create(
            api_id=model.api_id, defaults=_model_fields(model)
        )
        created["models"] += made
    for dated, canonical in DATED_IDS.items():
        _, made = api_model_cls.objects.get_or_create(api_id=dated, defaults=_dated_fields(dated, by_id[canonical]))
        created["models"] += made
    for row in PRICES:
        _, made = price_version_cls.objects.get_or_create(
            api_model=by_id[row.api_id], effective_from=_d(row.since), defaults=_price_fields(row)
        )
        created["prices"] += made
    for row in ALIASES:
        _, made = model_alias_cls.objects.get_or_create(
            alias=row.alias,
            effective_from=_d(row.since),
            defaults={
                "api_model": by_id[row.api_id],
                "long_context": row.alias in ALIAS_LONG_CONTEXT,
                "notes": f"Source: {row.source}",
            },
        )
        created["aliases"] += made
    return created


def catalog_correct(*, api_model_cls, model_alias_cls, price_version_cls, protected_error) -> None:
    """Bring a catalog loaded from an earlier version of this file up to this one.

    Model facts (context windows, tokenizer, names) are set to the values above: they are
    corrections, and no ledger row depends on them; so are the citations (source, notes) of
    the catalog's own aliases and price versions. Prices are never rewritten: the missing
    dated versions are added (`catalog_sync`), and the superseded placeholder versions are
    deleted only where nothing refers to them (`protected_error` is raised by the PROTECT
    foreign keys of quotes, ledgers and usage events); a referenced one stays, so the rows
    made under it keep their price version.
    """
    catalog_sync(api_model_cls=api_model_cls, model_alias_cls=model_alias_cls, price_version_cls=price_version_cls)
    for model in MODELS:
        api_model_cls.objects.filter(api_id=model.api_id).update(**_model_fields(model))
    for dated, canonical in DATED_IDS.items():
        fields = _dated_fields(dated, api_model_cls.objects.get(api_id=canonical))
        del fields["display_name"]  # may have been named in the admin; the facts follow the base
        api_model_cls.objects.filter(api_id=dated).update(**fields)
    for row in PRICES:
        price_version_cls.objects.filter(api_model__api_id=row.api_id, effective_from=_d(row.since)).update(
            source_url=row.source, notes=row.notes
        )
    for row in ALIASES:
        model_alias_cls.objects.filter(alias=row.alias, effective_from=_d(row.since)).update(
            notes=f"Source: {row.source}"
        )
    for version in price_version_cls.objects.filter(label__in=SUPERSEDED_VERSIONS):
        # Where a quote, ledger or usage row was made under it, it stays as it is.
        with suppress(protected_error):
            version.delete()
