"""Prompt builders with known token counts: a word of at most 4 ASCII letters is exactly one
legacy token; every message adds 3 tokens of overhead on its first block."""

from __future__ import annotations

MESSAGE_OVERHEAD = 3


def words(n: int, tag: str = "w") -> str:
    """n one-token words; `tag` (max 4 chars) makes otherwise equal texts different."""
    assert len(tag) <= 4
    return " ".join([tag] + ["lore"] * (n - 1))


def usage_dict(usage) -> dict:
    return {
        "input": usage.input_tokens,
        "write": usage.cache_creation_input_tokens,
        "read": usage.cache_read_input_tokens,
        "w5m": usage.cache_creation.ephemeral_5m_input_tokens,
        "w1h": usage.cache_creation.ephemeral_1h_input_tokens,
    }


def total_input(usage) -> int:
    return usage.input_tokens + usage.cache_creation_input_tokens + usage.cache_read_input_tokens
