"""One prompt in flight on the bridge: its event queue, and the shapes of a turn's input and usage."""

import asyncio
from collections.abc import Callable
from typing import Any

from .errors import invalid_request


class Turn:
    """One prompt in flight; the HTTP stream reads `queue` until `done` or `error`. Every event
    names the turn (`turn`: its number in the ACP session, as its usage records do)."""

    def __init__(self, session_id: str, *, cancel: Callable[[], None]) -> None:
        self.session_id = session_id
        self.number: int | None = None  # set as the turn starts
        self._cancel = cancel
        self.queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self.finished = False
        self.task: asyncio.Task | None = None

    def put(self, event: str, data: dict[str, Any]) -> None:
        if self.finished:
            return
        if event in ("done", "error"):
            self.finished = True
        self.queue.put_nowait((event, data if self.number is None else {**data, "turn": self.number}))

    def client_gone(self) -> None:
        # Nobody listens any more: stop the agent's work rather than pay for it.
        if not self.finished:
            self._cancel()


def prompt_blocks(prompt: Any) -> list[dict[str, Any]]:
    if isinstance(prompt, str):
        return [{"type": "text", "text": prompt}]
    if isinstance(prompt, list) and prompt and all(isinstance(b, dict) and b.get("type") for b in prompt):
        return prompt
    raise invalid_request("prompt must be a string or a list of ACP content blocks", field="prompt")


def turn_usage(usage: Any) -> dict[str, int] | None:
    """The turn's `PromptResponse.usage` as the contract's `done` carries it. A count the agent
    sent as something else than a number reads as 0, so the turn still ends (and is billed from
    what can be read) instead of failing."""
    if not isinstance(usage, dict):
        return None
    keys = ("inputTokens", "outputTokens", "cachedReadTokens", "cachedWriteTokens")
    out = {k: _tokens(usage.get(k)) for k in keys}
    out["totalTokens"] = _tokens(usage.get("totalTokens")) or sum(out.values())
    return out


def _tokens(value: Any) -> int:
    try:
        return max(int(value or 0), 0)
    except (TypeError, ValueError, OverflowError):
        return 0
