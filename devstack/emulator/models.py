"""The models the emulator serves, with the facts the cache accounting depends on."""

from __future__ import annotations

import re
from dataclasses import dataclass

STANDARD_CONTEXT = 200_000
LONG_CONTEXT = 1_000_000


@dataclass(frozen=True)
class ModelSpec:
    id: str
    display_name: str
    # Tokenizer family and its count relative to the legacy family, in percent.
    tokenizer: str
    ratio_pct: int
    # Shortest prefix (in this model's tokens) that may be written to the cache.
    min_cacheable: int
    created_at: str
    dated_id: str | None = None


@dataclass(frozen=True)
class ResolvedModel:
    spec: ModelSpec
    requested: str
    long_context: bool


# Published minimums, except Haiku 5.5 and Fable 5.1: Anthropic has not published those;
# 2,048 for Haiku 5.5 is our assumption (between Haiku 4.5's 4,096 and the 512 of the newest
# models). Fable 5.1 is offered by current Claude Code ("fable"); we assume it counts like
# Opus 4.7+ and caches from 1,024 tokens.
_SPECS = [
    ModelSpec(
        "claude-haiku-4-5", "Claude Haiku 4.5", "legacy", 100, 4096, "2025-10-01T00:00:00Z", "claude-haiku-4-5-20251001"
    ),
    ModelSpec("claude-haiku-5-5", "Claude Haiku 5.5", "haiku-5.5", 130, 2048, "2026-09-01T00:00:00Z"),
    ModelSpec(
        "claude-sonnet-4-5",
        "Claude Sonnet 4.5",
        "legacy",
        100,
        1024,
        "2025-09-29T00:00:00Z",
        "claude-sonnet-4-5-20250929",
    ),
    ModelSpec("claude-sonnet-4-6", "Claude Sonnet 4.6", "legacy", 100, 1024, "2026-02-17T00:00:00Z"),
    ModelSpec("claude-sonnet-5", "Claude Sonnet 5", "legacy", 100, 1024, "2026-05-01T00:00:00Z"),
    ModelSpec("claude-sonnet-5-5", "Claude Sonnet 5.5", "legacy", 100, 512, "2026-09-01T00:00:00Z"),
    ModelSpec(
        "claude-opus-4-5", "Claude Opus 4.5", "legacy", 100, 4096, "2025-11-01T00:00:00Z", "claude-opus-4-5-20251101"
    ),
    ModelSpec("claude-opus-4-6", "Claude Opus 4.6", "legacy", 100, 4096, "2026-02-05T00:00:00Z"),
    ModelSpec("claude-opus-4-7", "Claude Opus 4.7", "opus-4.7", 135, 2048, "2026-04-01T00:00:00Z"),
    ModelSpec("claude-opus-4-8", "Claude Opus 4.8", "opus-4.7", 135, 1024, "2026-06-01T00:00:00Z"),
    ModelSpec("claude-opus-5", "Claude Opus 5", "opus-4.7", 135, 512, "2026-07-01T00:00:00Z"),
    ModelSpec("claude-opus-5-5", "Claude Opus 5.5", "opus-4.7", 135, 512, "2026-10-01T00:00:00Z"),
    ModelSpec("claude-fable-5-1", "Claude Fable 5.1", "opus-4.7", 135, 1024, "2026-10-15T00:00:00Z"),
]

MODELS: dict[str, ModelSpec] = {s.id: s for s in _SPECS}
_DATED = re.compile(r"^(?P<base>.+?)-(?P<date>\d{8})$")


def resolve(model: str, *, betas: str = "") -> ResolvedModel | None:
    """Map an API model id (dated, `[1m]`- or `-1m`-suffixed) to its model, or None."""
    if not isinstance(model, str) or not model:
        return None
    name = model.strip()
    long_context = "context-1m" in betas
    for suffix in ("[1m]", "-1m"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            long_context = True
    spec = MODELS.get(name)
    if spec is None:
        match = _DATED.match(name)
        if match:
            spec = MODELS.get(match.group("base"))
    if spec is None:
        return None
    return ResolvedModel(spec=spec, requested=model, long_context=long_context)


def context_window(resolved: ResolvedModel) -> int:
    return LONG_CONTEXT if resolved.long_context else STANDARD_CONTEXT
