"""Deterministic token counts and the block sequence a prompt is cached by.

The count is not Anthropic's tokenizer, only stable across runs and shaped like one:
every word or punctuation mark is one token per started 4 bytes of UTF-8 ("lore" is 1,
"lorem" is 2). Newer tokenizer families scale a block's legacy count by their ratio
(Opus 4.7 and later: 135 %, Haiku 5.5: 130 %), rounded up per block.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass, field

_PIECE = re.compile(r"\w+|[^\w\s]")

# Fixed costs, in legacy tokens.
MESSAGE_OVERHEAD = 3  # role and turn separators, charged on a message's first block
TOOL_CALL_OVERHEAD = 3  # tool_use / tool_result framing
IMAGE_TOKENS = 1600
DOCUMENT_TOKENS = 2000

# Block types that carry no tokens of their own: Anthropic drops earlier turns' thinking.
_FREE_TYPES = {"thinking", "redacted_thinking"}


class PromptError(ValueError):
    """The request is malformed the way Anthropic answers with invalid_request_error."""


@functools.lru_cache(maxsize=8192)
def text_units(text: str) -> int:
    # Memoized: a chat loop resends the same history every turn.
    if not text:
        return 0
    return sum((len(p.encode()) + 3) // 4 for p in _PIECE.findall(text))


def _dumps(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _strip_cc(block: dict) -> dict:
    return {k: v for k, v in block.items() if k != "cache_control"}


def _content_units(content) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return text_units(content)
    if isinstance(content, list):
        return sum(block_units(b) for b in content if isinstance(b, dict))
    return text_units(_dumps(content))


def block_units(block: dict) -> int:
    kind = block.get("type")
    if kind == "text":
        return text_units(block.get("text") or "")
    if kind in _FREE_TYPES:
        return 0
    if kind == "image":
        return IMAGE_TOKENS
    if kind == "document":
        source = block.get("source") or {}
        if source.get("type") == "text":
            return text_units(source.get("data") or "")
        if source.get("type") == "content":
            return _content_units(source.get("content"))
        return DOCUMENT_TOKENS
    if kind == "tool_use" or kind == "server_tool_use":
        return TOOL_CALL_OVERHEAD + text_units(block.get("name") or "") + text_units(_dumps(block.get("input") or {}))
    if kind == "tool_result":
        return TOOL_CALL_OVERHEAD + _content_units(block.get("content"))
    return text_units(_dumps(_strip_cc(block)))


def tool_units(tool: dict) -> int:
    return text_units(_dumps(_strip_cc(tool)))


def scale(units: int, ratio_pct: int) -> int:
    return -(-units * ratio_pct // 100)


@dataclass
class Block:
    where: str  # "tools", "system" or "messages"
    tokens: int
    digest: bytes  # chained: identifies the whole prefix up to and including this block
    cache_control: dict | None
    own: bytes = b""  # this block alone, for cache diagnostics
    message: int = -1  # index of the message it belongs to (-1: tools or system)


@dataclass
class Prompt:
    blocks: list[Block] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(b.tokens for b in self.blocks)

    def cumulative(self) -> list[int]:
        out, running = [], 0
        for b in self.blocks:
            running += b.tokens
            out.append(running)
        return out


def _cache_control(block: dict, where: str) -> dict | None:
    cc = block.get("cache_control")
    if cc is None:
        return None
    if not isinstance(cc, dict) or cc.get("type") != "ephemeral":
        raise PromptError(f"{where}.cache_control: type must be 'ephemeral'")
    if cc.get("ttl", "5m") not in ("5m", "1h"):
        raise PromptError(f"{where}.cache_control.ttl: Input should be '5m' or '1h'")
    return cc


def build_prompt(body: dict, ratio_pct: int) -> Prompt:
    """Flatten tools -> system -> messages into blocks with chained prefix digests."""
    prompt = Prompt()
    chain = hashlib.blake2b(digest_size=16)

    def add(where: str, raw: dict, units: int, identity, cc, message: int = -1) -> None:
        encoded = _dumps(identity).encode()
        chain.update(encoded)
        own = hashlib.blake2b(encoded, digest_size=8).digest()
        prompt.blocks.append(Block(where, scale(units, ratio_pct), chain.copy().digest(), cc, own, message))

    tools = body.get("tools") or []
    if not isinstance(tools, list):
        raise PromptError("tools: Input should be a valid list")
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or not tool.get("name"):
            raise PromptError(f"tools.{i}.name: Field required")
        add("tools", tool, tool_units(tool), ["tool", _strip_cc(tool)], _cache_control(tool, f"tools.{i}"))

    system = body.get("system")
    if isinstance(system, str):
        if system:
            add("system", {}, text_units(system), ["system", system], None)
    elif isinstance(system, list):
        for i, block in enumerate(system):
            if not isinstance(block, dict) or block.get("type") != "text":
                raise PromptError(f"system.{i}: Input tag does not match the expected tag 'text'")
            add(
                "system",
                block,
                text_units(block.get("text") or ""),
                ["system", _strip_cc(block)],
                _cache_control(block, f"system.{i}"),
            )
    elif system is not None:
        raise PromptError("system: Input should be a valid string or list")

    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise PromptError(
            "messages: Field required" if messages is None else "messages: at least one message is required"
        )
    last = len(messages) - 1
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise PromptError(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        role, content = message["role"], message.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        if not isinstance(content, list):
            raise PromptError(f"messages.{i}.content: Input should be a valid string or list")
        if not content:
            if i == last and role == "assistant":
                continue  # an empty final assistant turn is allowed (prefill)
            raise PromptError(
                f"messages.{i}: all messages must have non-empty content except for "
                "the optional final assistant message"
            )
        for j, block in enumerate(content):
            if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                raise PromptError(f"messages.{i}.content.{j}: Input should be a valid dictionary")
            units = block_units(block) + (MESSAGE_OVERHEAD if j == 0 else 0)
            identity = [role, j == 0, _strip_cc(block)]
            add("messages", block, units, identity, _cache_control(block, f"messages.{i}.content.{j}"), i)
    return prompt


def count_text(text: str, ratio_pct: int) -> int:
    return scale(text_units(text), ratio_pct)
