"""Import prices from LiteLLM's `model_prices_and_context_window.json`.

That file is the common exchange format for price tables; we read it to catch price
changes, never at run time. Only Anthropic's own Claude entries are considered
(`litellm_provider == "anthropic"`); Bedrock/Vertex copies are skipped. A model whose
prices differ from the version in force gets a new `PriceVersion` from `effective_from`;
fields the file does not carry (minimum cacheable length, multipliers, a 1h write price
when absent) are copied from the version in force. Per-token figures are parsed as
Decimals straight from the JSON text: no float ever touches a price.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import transaction

from .models import PriceVersion
from .pricing import NoPriceVersion, UnknownModel, model_resolve, price_version_for

SOURCE_URL = "https://github.com/BerriAI/litellm/blob/main/model_prices_and_context_window.json"
MTOK = Decimal(1_000_000)
LONG_THRESHOLD = 200_000

# our field -> LiteLLM key (per token)
BASE_KEYS = {
    "input": "input_cost_per_token",
    "output": "output_cost_per_token",
    "cache_write_5m": "cache_creation_input_token_cost",
    "cache_write_1h": "cache_creation_input_token_cost_above_1hr",
    "cache_read": "cache_read_input_token_cost",
}
LONG_KEYS = {
    "long_context_input": "input_cost_per_token_above_200k_tokens",
    "long_context_output": "output_cost_per_token_above_200k_tokens",
    "long_context_cache_write_5m": "cache_creation_input_token_cost_above_200k_tokens",
    "long_context_cache_write_1h": "cache_creation_input_token_cost_above_1hr_above_200k_tokens",
    "long_context_cache_read": "cache_read_input_token_cost_above_200k_tokens",
}


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)  # "label: field old -> new, ..."
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (key, reason)
    not_anthropic: int = 0


def _per_mtok(value) -> Decimal:
    return (Decimal(value) * MTOK).normalize()


def litellm_parse(text: str) -> dict:
    return json.loads(text, parse_float=Decimal)


@transaction.atomic
def litellm_prices_import(*, data: dict, effective_from: datetime, dry_run: bool = False) -> ImportReport:
    report = ImportReport()
    seen: dict[str, str] = {}  # canonical api id -> LiteLLM key that set it
    for key in sorted(data):
        entry = data[key]
        if not isinstance(entry, dict) or entry.get("litellm_provider") != "anthropic":
            report.not_anthropic += 1
            continue
        model_id = key.removeprefix("anthropic/")
        if not model_id.startswith("claude"):
            report.skipped.append((key, "not a Claude model"))
            continue
        if entry.get("mode", "chat") != "chat":
            report.skipped.append((key, f"mode {entry.get('mode')!r}"))
            continue
        try:
            resolved = model_resolve(model_id=model_id, at=effective_from)
            current = price_version_for(api_model=resolved.priced_model, at=effective_from)
        except UnknownModel:
            report.skipped.append((key, "not in the catalog (add the ApiModel first)"))
            continue
        except NoPriceVersion:
            report.skipped.append((key, "model has no price version to extend"))
            continue
        missing = [k for f, k in BASE_KEYS.items() if f != "cache_write_1h" and entry.get(k) is None]
        if missing:
            report.skipped.append((key, f"missing {', '.join(missing)}"))
            continue
        canonical = resolved.api_id
        if canonical in seen:
            report.skipped.append((key, f"same model as {seen[canonical]}"))
            continue
        seen[canonical] = key

        new = {f: getattr(current, f) for f in (*BASE_KEYS, *LONG_KEYS, "long_context_threshold")}
        for f, k in BASE_KEYS.items():
            if entry.get(k) is not None:
                new[f] = _per_mtok(entry[k])
        if entry.get(LONG_KEYS["long_context_input"]) is not None:
            new["long_context_threshold"] = LONG_THRESHOLD
            for f, k in LONG_KEYS.items():
                if entry.get(k) is not None:
                    new[f] = _per_mtok(entry[k])
            if any(new[f] is None for f in LONG_KEYS):
                report.skipped.append((key, "incomplete long-context prices"))
                continue
        changes = [
            f"{f} {getattr(current, f)} -> {new[f]}" for f in new if _differs(getattr(current, f), new[f])
        ]
        if not changes:
            report.unchanged.append(f"{canonical} ({current.label})")
            continue
        if current.effective_from == effective_from:
            report.skipped.append(
                (key, "prices differ from a version with this very date; pick another date")
            )
            continue
        label = f"{canonical}@{effective_from:%Y-%m-%d}"
        if PriceVersion.objects.filter(label=label).exists():
            label = f"{canonical}@{effective_from:%Y-%m-%dT%H%M%S}"
        report.created.append(f"{label}: {'; '.join(changes)}")
        if dry_run:
            continue
        PriceVersion.objects.create(
            api_model=resolved.priced_model,
            effective_from=effective_from,
            label=label,
            min_cacheable_tokens=current.min_cacheable_tokens,
            batch_multiplier=current.batch_multiplier,
            geo_multiplier=current.geo_multiplier,
            source_url=SOURCE_URL,
            notes=f"Imported from LiteLLM ({key}); changed: {'; '.join(changes)}",
            **new,
        )
    return report


def _differs(old, new) -> bool:
    if old is None or new is None:
        return old is not new
    return Decimal(old) != Decimal(new)
