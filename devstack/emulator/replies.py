"""Deterministic replies and Anthropic-shaped ids."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re

from .tokens import count_text

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_counter = itertools.count()
_salt = os.urandom(8)


def new_id(prefix: str) -> str:
    """`msg_01…` / `req_01…` / `toolu_01…`: 22 base58 characters, unique per process run."""
    raw = hashlib.sha256(_salt + str(next(_counter)).encode()).digest()
    n = int.from_bytes(raw, "big")
    chars = []
    for _ in range(22):
        n, r = divmod(n, 58)
        chars.append(_ALPHABET[r])
    return f"{prefix}_01{''.join(chars)}"


def _last_user_text(messages: list) -> str:
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        texts = [b.get("text", "") for b in content or [] if isinstance(b, dict) and b.get("type") == "text"]
        # Claude Code puts <system-reminder> blocks before the user's own words.
        own = [t for t in texts if not t.lstrip().startswith("<system-reminder>")]
        if own or texts:
            return (own or texts)[-1]
        if any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content or []):
            return "the tool result"
    return ""


def reply_text(body: dict, model_id: str) -> str:
    """A short answer derived from the last user text: same input, same words."""
    text = _last_user_text(body.get("messages") or [])
    words = re.findall(r"\S+", text)
    snippet = " ".join(words[:12]) + (" …" if len(words) > 12 else "")
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return (
        f'Emulated {model_id} reply {digest}: you said "{snippet}".'
        if snippet
        else (f"Emulated {model_id} reply {digest}.")
    )


def truncate(text: str, max_tokens: int, ratio_pct: int) -> tuple[str, bool]:
    """Cut the reply to max_tokens of the model's tokens; True when it was cut."""
    if count_text(text, ratio_pct) <= max_tokens:
        return text, False
    words = text.split(" ")
    kept: list[str] = []
    for word in words:
        if count_text(" ".join([*kept, word]), ratio_pct) > max_tokens:
            break
        kept.append(word)
    return " ".join(kept), True


def _sample(schema: dict, depth: int = 0):
    kind = schema.get("type")
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    if kind == "object" and depth < 4:
        props = schema.get("properties") or {}
        return {k: _sample(props.get(k) or {}, depth + 1) for k in schema.get("required") or []}
    defaults = {"string": "emulated", "integer": 1, "number": 1, "boolean": True, "array": []}
    return defaults.get(kind, "emulated")


def structured_text(body: dict) -> str | None:
    """With structured outputs (`output_format` / `output_config.format` json_schema), a JSON
    reply that fits the schema's required fields, as Claude Code's side requests expect."""
    fmt = body.get("output_format") or (body.get("output_config") or {}).get("format") or {}
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return None
    return json.dumps(_sample(fmt.get("schema") or {"type": "object"}))


def forced_tool(body: dict) -> dict | None:
    """When tool_choice forces a tool call, the tool and a minimal valid input for it."""
    choice = body.get("tool_choice") or {}
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("name")]
    if not tools or choice.get("type") not in ("tool", "any"):
        return None
    tool = next((t for t in tools if t["name"] == choice.get("name")), tools[0])
    schema = tool.get("input_schema") or {}
    return {"type": "tool_use", "id": new_id("toolu"), "name": tool["name"], "input": _sample(schema)}
