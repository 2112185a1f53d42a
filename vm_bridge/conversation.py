"""A session's conversation, counted in the tokens of other models (`POST /session/count_tokens`).

The conversation comes from the agent's own transcript (`<config dir>/projects/*/<sessionId>.jsonl`,
main chain only: sub-agents run conversations of their own) and is counted with the Messages
API's `POST /v1/messages/count_tokens`, with the credentials the agent itself uses. The system
prompt and the tool definitions are not in the transcript: the counts cover the messages only,
which is why the backend uses their ratio, not their absolute value.
"""

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import httpx

from .errors import ErrorAnswer

logger = logging.getLogger("vm_bridge.conversation")

API_VERSION = "2023-06-01"
DEFAULT_BASE_URL = "https://api.anthropic.com"
MAX_MODELS = 4
# Earlier turns' thinking is not sent again (and the API wants its signature): never counted.
_DROPPED_BLOCKS = {"thinking", "redacted_thinking"}


def transcript_messages(path: Path) -> list[dict[str, Any]]:
    """The Messages API `messages` a transcript's next request would carry, in order.

    Assistant lines are one per content block and join back up; a compaction
    (`system` line with `subtype: "compact_boundary"`) starts the conversation afresh;
    lines Claude Code writes itself (`<synthetic>` model) are not sent to the API.
    """
    messages: list[dict[str, Any]] = []
    with path.open("rb") as fh:
        for raw in fh:
            try:
                line = json.loads(raw)
            except ValueError:
                continue  # a line being written
            if not isinstance(line, dict) or line.get("isSidechain"):
                continue
            kind = line.get("type")
            if kind == "system" and line.get("subtype") == "compact_boundary":
                messages = []
                continue
            message = line.get("message")
            if kind not in ("user", "assistant") or not isinstance(message, dict):
                continue
            if kind == "assistant" and message.get("model") == "<synthetic>":
                continue
            blocks = _blocks(message.get("content"))
            if not blocks:
                continue
            if messages and messages[-1]["role"] == kind:
                # One message per turn of a role: an assistant message's blocks (one line each,
                # sharing `message.id`) and the tool results that answer them join up again.
                messages[-1]["content"].extend(blocks)
            else:
                messages.append({"role": kind, "content": blocks})
    while messages and messages[0]["role"] != "user":
        messages.pop(0)
    return messages


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        return []
    return [
        {k: v for k, v in block.items() if k != "cache_control"}
        for block in content
        if isinstance(block, dict) and block.get("type") and block["type"] not in _DROPPED_BLOCKS
    ]


def _tools_used(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Minimal definitions of the tools the conversation calls: the API wants every `tool_use`
    to name a defined tool. The agent's real definitions are not in the transcript."""
    names = sorted(
        {
            block["name"]
            for message in messages
            for block in message["content"]
            if block.get("type") == "tool_use" and isinstance(block.get("name"), str)
        }
    )
    return [{"name": name, "input_schema": {"type": "object"}} for name in names]


class TokenCounter:
    """Counts through the Messages API with the agent's own credentials (its environment)."""

    def __init__(self, env: dict[str, str], *, timeout: float = 10.0) -> None:
        self.base_url = (env.get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.headers = {"anthropic-version": API_VERSION, "content-type": "application/json"}
        if env.get("ANTHROPIC_API_KEY"):
            self.headers["x-api-key"] = env["ANTHROPIC_API_KEY"]
        elif env.get("ANTHROPIC_AUTH_TOKEN"):
            self.headers["authorization"] = f"Bearer {env['ANTHROPIC_AUTH_TOKEN']}"
        self.timeout = timeout

    @property
    def available(self) -> bool:
        """An API key or token to count with. (A Claude subscription's OAuth login is not one.)"""
        return "x-api-key" in self.headers or "authorization" in self.headers

    async def count(self, *, messages: list[dict[str, Any]], model_ids: list[str]) -> dict[str, int]:
        if not self.available:
            raise ErrorAnswer(503, "count_tokens_unavailable", "the agent has no API key or token to count tokens with")
        if not messages:
            return dict.fromkeys(model_ids, 0)
        tools = _tools_used(messages)
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
            counts = await asyncio.gather(*(self._count_one(client, messages, tools, m) for m in model_ids))
        return dict(zip(model_ids, counts, strict=True))

    async def _count_one(
        self, client: httpx.AsyncClient, messages: list[dict[str, Any]], tools: list[dict[str, Any]], model: str
    ) -> int:
        body: dict[str, Any] = {"model": model, "messages": messages}
        if tools:
            body["tools"] = tools
        try:
            response = await client.post(f"{self.base_url}/v1/messages/count_tokens", json=body, headers=self.headers)
        except httpx.TimeoutException:
            raise ErrorAnswer(504, "count_tokens_timeout", "the Messages API did not count in time") from None
        except httpx.HTTPError as exc:
            raise ErrorAnswer(502, "count_tokens_failed", f"the Messages API could not be reached: {exc}") from None
        if response.status_code != 200:
            raise _api_error(response, model)
        try:
            return int(response.json()["input_tokens"])
        except (ValueError, KeyError, TypeError):
            raise ErrorAnswer(502, "count_tokens_failed", "the Messages API answered without a count") from None


def _api_error(response: httpx.Response, model: str) -> ErrorAnswer:
    try:
        error = response.json().get("error") or {}
        message = str(error.get("message") or "")[:300]
    except (ValueError, AttributeError):
        message = ""
    extra = {"modelId": model, "apiStatus": response.status_code}
    if response.status_code == 404:
        return ErrorAnswer(400, "model_rejected", f"the Messages API does not know {model!r}", extra)
    status = response.status_code
    return ErrorAnswer(502, "count_tokens_failed", f"the Messages API answered {status}: {message}", extra)
