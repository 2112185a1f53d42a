"""Cache diagnostics: with `diagnostics: {previous_message_id}` in a request, say why its
prefix could not reuse the previous request's (model, tools, system or earlier messages
changed), shaped like Anthropic's `diagnostics.cache_miss_reason`."""

from __future__ import annotations

import collections
import hashlib
import json
from dataclasses import dataclass

from .tokens import Prompt

MAX_REMEMBERED = 100_000


@dataclass(frozen=True)
class Fingerprint:
    key: str
    model: str
    tools: bytes
    system: bytes
    messages: tuple[bytes, ...]
    params: bytes  # other prompt-affecting parameters (thinking, tool_choice)
    cached_tokens: int  # what this request left readable in the cache


def _hash(parts) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(part)
    return h.digest()


def fingerprint(*, key: str, model: str, prompt: Prompt, body: dict, cached_tokens: int) -> Fingerprint:
    by_message: dict[int, list[bytes]] = collections.defaultdict(list)
    for block in prompt.blocks:
        if block.where == "messages":
            by_message[block.message].append(block.own)
    params = json.dumps([body.get("thinking"), body.get("tool_choice")], sort_keys=True).encode()
    return Fingerprint(
        key=key,
        model=model,
        tools=_hash(b.own for b in prompt.blocks if b.where == "tools"),
        system=_hash(b.own for b in prompt.blocks if b.where == "system"),
        messages=tuple(_hash(by_message[i]) for i in sorted(by_message)),
        params=hashlib.blake2b(params, digest_size=8).digest(),
        cached_tokens=cached_tokens,
    )


class Diagnostics:
    def __init__(self) -> None:
        self._seen: collections.OrderedDict[str, Fingerprint] = collections.OrderedDict()

    def reset(self) -> None:
        self._seen.clear()

    def remember(self, message_id: str, fp: Fingerprint) -> None:
        self._seen[message_id] = fp
        while len(self._seen) > MAX_REMEMBERED:
            self._seen.popitem(last=False)

    def diagnose(self, previous_id: str | None, fp: Fingerprint) -> dict | None:
        """The response's `diagnostics` object, or None when nothing diverged."""
        if not previous_id:
            return None
        prev = self._seen.get(previous_id)
        if prev is None or prev.key != fp.key:
            return {"cache_miss_reason": {"type": "previous_message_not_found"}}
        missed = prev.cached_tokens
        if prev.model != fp.model:
            reason = "model_changed"
        elif prev.tools != fp.tools:
            reason = "tools_changed"
        elif prev.system != fp.system:
            reason = "system_changed"
        elif fp.messages[: len(prev.messages)] != prev.messages:  # not only appended to
            reason = "messages_changed"
        elif prev.params != fp.params:
            return {"cache_miss_reason": {"type": "unavailable"}}
        else:
            return None
        return {"cache_miss_reason": {"type": reason, "cache_missed_input_tokens": missed}}
