"""The price catalog as data: every row of DESIGN.md §6, with its sources.

Loaded by migration 0003 (so a fresh `migrate` has prices) and re-runnable with
`catalog_sync`, which only adds what is missing: rows edited in the admin are left
alone, and a price change is a new version with a later `effective_from`.

Sources (USD per million tokens; input / 5m write / 1h write / read / output):
- https://platform.claude.com/docs/en/about-claude/pricing (model prices, batch 50%,
  long-context premium for Sonnet 4 / 4.5 / 4.6 and Opus 4.6 above 200k input tokens,
  US-only `inference_geo` 1.1x for Opus 4.6 and newer models)
- https://platform.claude.com/docs/en/build-with-claude/prompt-caching (5m write 1.25x,
  1h write 2x, read 0.1x, minimum cacheable prompt length per model)
- The Sonnet 5.5 read price of $0.10 from 2026-10-07 is reported, not yet on the page.

Effective dates: the snapshot date in the dated id where there is one, the announced
release date where known, otherwise the first day the model appears in the Claude Code
transcripts under data/claude-code-logs (noted per row). `price_version_for` bills a
request dated before a model's first version at that first version.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

PRICING_URL = "https://platform.claude.com/docs/en/about-claude/pricing"
CACHING_URL = "https://platform.claude.com/docs/en/build-with-claude/prompt-caching"

# Tokenizers: count of the same text relative to the legacy tokenizer (Claude 4.x).
LEGACY = ("legacy", "1.00", "1.00")
TOKENIZER_2026 = ("claude-2026", "1.00", "1.35")  # Opus 4.7 and later: up to ~35% more tokens
TOKENIZER_HAIKU_55 = ("haiku-5.5", "1.00", "1.30")  # about 30% more than Haiku 4.5

SONNET_4X_LONG = {"threshold": 200_000, "prices": ("6", "7.50", "12", "0.60", "22.50")}
OPUS_46_LONG = {"threshold": 200_000, "prices": ("10", "12.50", "20", "1.00", "37.50")}


def _d(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


# api_id, display name, family, tokenizer, context window, 1M window
MODELS = [
    ("claude-haiku-4-5", "Claude Haiku 4.5", "haiku", LEGACY, 200_000, None),
    ("claude-haiku-5-5", "Claude Haiku 5.5", "haiku", TOKENIZER_HAIKU_55, 200_000, None),
    ("claude-sonnet-4-0", "Claude Sonnet 4", "sonnet", LEGACY, 200_000, 1_000_000),
    ("claude-sonnet-4-5", "Claude Sonnet 4.5", "sonnet", LEGACY, 200_000, 1_000_000),
    ("claude-sonnet-4-6", "Claude Sonnet 4.6", "sonnet", LEGACY, 200_000, 1_000_000),
    ("claude-sonnet-5", "Claude Sonnet 5", "sonnet", TOKENIZER_2026, 200_000, None),
    ("claude-sonnet-5-5", "Claude Sonnet 5.5", "sonnet", TOKENIZER_2026, 200_000, None),
    ("claude-opus-4-1", "Claude Opus 4.1", "opus", LEGACY, 200_000, None),
    ("claude-opus-4-5", "Claude Opus 4.5", "opus", LEGACY, 200_000, None),
    ("claude-opus-4-6", "Claude Opus 4.6", "opus", LEGACY, 200_000, 1_000_000),
    ("claude-opus-4-7", "Claude Opus 4.7", "opus", TOKENIZER_2026, 200_000, None),
    ("claude-opus-4-8", "Claude Opus 4.8", "opus", TOKENIZER_2026, 200_000, None),
    ("claude-opus-5", "Claude Opus 5", "opus", TOKENIZER_2026, 200_000, None),
    ("claude-opus-5-5", "Claude Opus 5.5", "opus", TOKENIZER_2026, 200_000, None),
]

# Dated ids seen in real Claude Code transcripts -> the undated model whose prices apply.
DATED_IDS = {
    "claude-haiku-4-5-20251001": "claude-haiku-4-5",
    "claude-sonnet-4-20250514": "claude-sonnet-4-0",
    "claude-sonnet-4-5-20250929": "claude-sonnet-4-5",
    "claude-opus-4-1-20250805": "claude-opus-4-1",
    "claude-opus-4-5-20251101": "claude-opus-4-5",
}

# api_id, effective_from, (in, 5m write, 1h write, read, out), min cacheable, long tier, geo, notes
PRICES = [
    (
        "claude-haiku-4-5",
        "2025-10-01",
        ("1", "1.25", "2", "0.10", "5"),
        4096,
        None,
        "1",
        "Snapshot date of claude-haiku-4-5-20251001.",
    ),
    (
        "claude-haiku-5-5",
        "2026-08-15",
        ("0.10", "0.125", "0.20", "0.01", "0.50"),
        None,
        {"threshold": 100_000, "prices": ("0.50", "0.625", "1.00", "0.05", "2.50")},
        "1.1",
        "Minimum cacheable length not published. Above 100k input tokens the whole request is "
        "billed at the higher tier. Release date not recorded here (not in the transcripts).",
    ),
    (
        "claude-sonnet-4-0",
        "2025-05-14",
        ("3", "3.75", "6", "0.30", "15"),
        1024,
        SONNET_4X_LONG,
        "1",
        "Sonnet 4; snapshot date of claude-sonnet-4-20250514. Long-context rates apply with the 1M window.",
    ),
    (
        "claude-sonnet-4-5",
        "2025-09-29",
        ("3", "3.75", "6", "0.30", "15"),
        1024,
        SONNET_4X_LONG,
        "1",
        "Snapshot date of claude-sonnet-4-5-20250929. Long-context rates apply with the 1M window.",
    ),
    (
        "claude-sonnet-4-6",
        "2026-02-17",
        ("3", "3.75", "6", "0.30", "15"),
        1024,
        SONNET_4X_LONG,
        "1.1",
        "Release date; first seen in the transcripts the same day.",
    ),
    (
        "claude-sonnet-5",
        "2026-07-03",
        ("2", "2.50", "4", "0.20", "10"),
        1024,
        None,
        "1.1",
        "Effective date = first use in the transcripts.",
    ),
    (
        "claude-sonnet-5-5",
        "2026-08-15",
        ("2", "2.50", "4", "0.20", "10"),
        512,
        None,
        "1.1",
        "Release date not recorded here (not in the transcripts).",
    ),
    (
        "claude-sonnet-5-5",
        "2026-10-07",
        ("2", "2.50", "4", "0.10", "10"),
        512,
        None,
        "1.1",
        "Cache read lowered to $0.10/MTok from 2026-10-07 (reported).",
    ),
    (
        "claude-opus-4-1",
        "2025-08-05",
        ("15", "18.75", "30", "1.50", "75"),
        1024,
        None,
        "1",
        "Snapshot date of claude-opus-4-1-20250805.",
    ),
    (
        "claude-opus-4-5",
        "2025-11-01",
        ("5", "6.25", "10", "0.50", "25"),
        4096,
        None,
        "1",
        "Snapshot date of claude-opus-4-5-20251101.",
    ),
    (
        "claude-opus-4-6",
        "2026-02-05",
        ("5", "6.25", "10", "0.50", "25"),
        4096,
        OPUS_46_LONG,
        "1.1",
        "Release date. Long-context rates apply with the 1M window.",
    ),
    (
        "claude-opus-4-7",
        "2026-04-16",
        ("5", "6.25", "10", "0.50", "25"),
        2048,
        None,
        "1.1",
        "Release date; first seen in the transcripts on 2026-04-19.",
    ),
    (
        "claude-opus-4-8",
        "2026-07-22",
        ("5", "6.25", "10", "0.50", "25"),
        1024,
        None,
        "1.1",
        "Effective date = first use in the transcripts.",
    ),
    (
        "claude-opus-5",
        "2026-07-29",
        ("5", "6.25", "10", "0.50", "25"),
        512,
        None,
        "1.1",
        "Effective date = first use in the transcripts.",
    ),
    (
        "claude-opus-5-5",
        "2026-08-15",
        ("4", "5", "8", "0.20", "20"),
        512,
        None,
        "1.1",
        "Release date not recorded here (not in the transcripts).",
    ),
]

# The picker's ids (DESIGN.md §4) and what they meant from the date on.
ALIASES_FROM = "2026-02-17"
ALIASES = [
    ("haiku", "claude-haiku-4-5", False),
    ("sonnet", "claude-sonnet-4-6", False),
    ("sonnet[1m]", "claude-sonnet-4-6", True),
    ("opus", "claude-opus-4-6", False),
    ("opus[1m]", "claude-opus-4-6", True),
    ("default", "claude-sonnet-4-6", False),
]


def catalog_sync(*, api_model_cls, model_alias_cls, price_version_cls) -> dict[str, int]:
    """Add every catalog row that is missing; never change an existing one.

    Takes the model classes so that the data migration can pass its historical models.
    Returns how many rows of each kind were created.
    """
    created = {"models": 0, "aliases": 0, "prices": 0}
    by_id = {}
    for api_id, name, family, (tok, low, high), window, long_window in MODELS:
        obj, made = api_model_cls.objects.get_or_create(
            api_id=api_id,
            defaults={
                "display_name": name,
                "family": family,
                "tokenizer_family": tok,
                "tokenizer_ratio_low": Decimal(low),
                "tokenizer_ratio_high": Decimal(high),
                "context_window": window,
                "long_context_window": long_window,
            },
        )
        by_id[api_id] = obj
        created["models"] += made
    for dated, canonical in DATED_IDS.items():
        base = by_id[canonical]
        obj, made = api_model_cls.objects.get_or_create(
            api_id=dated,
            defaults={
                "display_name": f"{base.display_name} ({dated.rsplit('-', 1)[1]})",
                "family": base.family,
                "canonical": base,
                "tokenizer_family": base.tokenizer_family,
                "tokenizer_ratio_low": base.tokenizer_ratio_low,
                "tokenizer_ratio_high": base.tokenizer_ratio_high,
                "context_window": base.context_window,
                "long_context_window": base.long_context_window,
            },
        )
        created["models"] += made
    for api_id, since, (inp, w5, w1, rd, out), minimum, long_tier, geo, notes in PRICES:
        long_fields = {}
        if long_tier:
            li, lw5, lw1, lrd, lout = (Decimal(v) for v in long_tier["prices"])
            long_fields = {
                "long_context_threshold": long_tier["threshold"],
                "long_context_input": li,
                "long_context_cache_write_5m": lw5,
                "long_context_cache_write_1h": lw1,
                "long_context_cache_read": lrd,
                "long_context_output": lout,
            }
        _, made = price_version_cls.objects.get_or_create(
            api_model=by_id[api_id],
            effective_from=_d(since),
            defaults={
                "label": f"{api_id}@{since}",
                "input": Decimal(inp),
                "cache_write_5m": Decimal(w5),
                "cache_write_1h": Decimal(w1),
                "cache_read": Decimal(rd),
                "output": Decimal(out),
                "min_cacheable_tokens": minimum,
                "batch_multiplier": Decimal("0.5"),
                "geo_multiplier": Decimal(geo),
                "source_url": PRICING_URL,
                "notes": notes,
                **long_fields,
            },
        )
        created["prices"] += made
    for alias, api_id, long_context in ALIASES:
        _, made = model_alias_cls.objects.get_or_create(
            alias=alias,
            effective_from=_d(ALIASES_FROM),
            defaults={"api_model": by_id[api_id], "long_context": long_context},
        )
        created["aliases"] += made
    return created
