"""Import prices from LiteLLM's `model_prices_and_context_window.json`.

That file is the common exchange format for price tables; we read it to catch price
changes, never at run time. Only Anthropic's own Claude entries are considered
(`litellm_provider == "anthropic"`); Bedrock/Vertex copies are skipped. A model whose
prices differ from the version in force gets a new `PriceVersion` from `effective_from`
(`litellm_prices_plan` computes the difference per model and column without writing, so it
can be shown first; `litellm_prices_apply` creates the versions). Fields the file does not
carry (minimum cacheable length, multipliers, a 1h write price when absent) are copied from
the version in force. Per-token figures are parsed as Decimals straight from the JSON text:
no float ever touches a price.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import transaction

from billing.catalog.selectors import NoPriceVersion, UnknownModel, model_resolve, price_version_for
from billing.models import PriceVersion

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


@dataclass(frozen=True)
class VersionChange:
    """One price version the file asks for: its model, the version it follows, every changed column."""

    api_id: str
    litellm_key: str
    current_label: str
    label: str
    columns: list[tuple[str, Decimal | None, Decimal | None]]  # (field, in force, from the file)
    fields: dict  # the new version's prices (every column, changed or carried over)


@dataclass
class ImportPlan:
    """What an import would do, computed without writing: shown before it is applied."""

    effective_from: datetime
    changes: list[VersionChange] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (key, reason)
    not_anthropic: int = 0


def _per_mtok(value) -> Decimal:
    return (Decimal(value) * MTOK).normalize()


def litellm_parse(text: str) -> dict:
    return json.loads(text, parse_float=Decimal)


def litellm_prices_plan(*, data: dict, effective_from: datetime) -> ImportPlan:
    """Compare the file with the catalog's versions in force at `effective_from`; write nothing."""
    plan = ImportPlan(effective_from=effective_from)
    seen: dict[str, str] = {}  # canonical api id -> LiteLLM key that set it
    labels: set[str] = set()
    for key in sorted(data):
        entry = data[key]
        if not isinstance(entry, dict) or entry.get("litellm_provider") != "anthropic":
            plan.not_anthropic += 1
            continue
        model_id = key.removeprefix("anthropic/")
        if not model_id.startswith("claude"):
            plan.skipped.append((key, "not a Claude model"))
            continue
        if entry.get("mode", "chat") != "chat":
            plan.skipped.append((key, f"mode {entry.get('mode')!r}"))
            continue
        try:
            resolved = model_resolve(model_id=model_id, at=effective_from)
            current = price_version_for(api_model=resolved.priced_model, at=effective_from)
        except UnknownModel:
            plan.skipped.append((key, "not in the catalog (add the ApiModel first)"))
            continue
        except NoPriceVersion:
            plan.skipped.append((key, "model has no price version to extend"))
            continue
        missing = [k for f, k in BASE_KEYS.items() if f != "cache_write_1h" and entry.get(k) is None]
        if missing:
            plan.skipped.append((key, f"missing {', '.join(missing)}"))
            continue
        canonical = resolved.api_id
        if canonical in seen:
            plan.skipped.append((key, f"same model as {seen[canonical]}"))
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
                plan.skipped.append((key, "incomplete long-context prices"))
                continue
        columns = [(f, getattr(current, f), new[f]) for f in new if _differs(getattr(current, f), new[f])]
        if not columns:
            plan.unchanged.append(f"{canonical} ({current.label})")
            continue
        if current.effective_from == effective_from:
            plan.skipped.append((key, "prices differ from a version with this very date; pick another date"))
            continue
        label = f"{canonical}@{effective_from:%Y-%m-%d}"
        if label in labels or PriceVersion.objects.filter(label=label).exists():
            label = f"{canonical}@{effective_from:%Y-%m-%dT%H%M%S}"
        labels.add(label)
        plan.changes.append(VersionChange(canonical, key, current.label, label, columns, new))
    return plan


@transaction.atomic
def litellm_prices_apply(*, plan: ImportPlan) -> list[PriceVersion]:
    """Create the plan's price versions. Versions in force before are never changed: fields the
    file does not carry (minimum cacheable length, multipliers) come from them."""
    created = []
    for change in plan.changes:
        current = PriceVersion.objects.select_related("api_model").get(label=change.current_label)
        changed = "; ".join(f"{f} {old} -> {new}" for f, old, new in change.columns)
        created.append(
            PriceVersion.objects.create(
                api_model=current.api_model,
                effective_from=plan.effective_from,
                label=change.label,
                min_cacheable_tokens=current.min_cacheable_tokens,
                batch_multiplier=current.batch_multiplier,
                geo_multiplier=current.geo_multiplier,
                source_url=SOURCE_URL,
                notes=f"Imported from LiteLLM ({change.litellm_key}); changed: {changed}",
                **change.fields,
            )
        )
    return created


def _differs(old, new) -> bool:
    if old is None or new is None:
        return old is not new
    return Decimal(old) != Decimal(new)
