"""Prompt-cache accounting: which tokens of a request are read, written or plain input.

Entries are keyed by (API key, model, exact prefix up to a breakpoint). A request reads
the longest live prefix it can find at each breakpoint or up to LOOKBACK block boundaries
before it,
writes an entry at every breakpoint past that prefix (if the prefix there reaches the
model's minimum), and bills the rest as plain input. A token lands in exactly one class.
Lifetimes run from the start of the request; a read refreshes the entry it read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .tokens import Prompt, PromptError

MAX_BREAKPOINTS = 4
LOOKBACK = 20  # earlier block boundaries checked per breakpoint, besides its own
TTL_SECONDS = {"5m": 300, "1h": 3600}


class Clock:
    """Wall time plus an offset that tests move forward."""

    def __init__(self, offset: float = 0.0) -> None:
        self.initial_offset = offset
        self.offset = offset

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> float:
        self.offset += seconds
        return self.now()

    def reset(self) -> None:
        self.offset = self.initial_offset


@dataclass(frozen=True)
class Breakpoint:
    index: int
    ttl: str


@dataclass
class Entry:
    tokens: int
    ttl: str
    expires: float


@dataclass
class Usage:
    input_tokens: int = 0
    cache_read: int = 0
    write_5m: int = 0
    write_1h: int = 0
    # Index of the block whose prefix was read, for the request log.
    read_index: int = -1
    written: list[int] = field(default_factory=list)

    @property
    def cache_creation(self) -> int:
        return self.write_5m + self.write_1h

    def as_api(self, output_tokens: int) -> dict:
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_creation,
            "cache_read_input_tokens": self.cache_read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.write_5m,
                "ephemeral_1h_input_tokens": self.write_1h,
            },
            "output_tokens": output_tokens,
            "service_tier": "standard",
            "inference_geo": "not_available",
        }


def breakpoints(prompt: Prompt, automatic: dict | None) -> list[Breakpoint]:
    """Explicit cache_control blocks plus the top-level automatic one on the last block."""
    found = [
        Breakpoint(i, (b.cache_control or {}).get("ttl", "5m"))
        for i, b in enumerate(prompt.blocks)
        if b.cache_control is not None
    ]
    if automatic is not None:
        if not isinstance(automatic, dict) or automatic.get("type") != "ephemeral":
            raise PromptError("cache_control: type must be 'ephemeral'")
        ttl = automatic.get("ttl", "5m")
        if ttl not in TTL_SECONDS:
            raise PromptError("cache_control.ttl: Input should be '5m' or '1h'")
        last = len(prompt.blocks) - 1
        if last >= 0 and not any(bp.index == last for bp in found):
            found.append(Breakpoint(last, ttl))
    if len(found) > MAX_BREAKPOINTS:
        raise PromptError(
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {len(found)}."
        )
    seen_5m = False
    for bp in found:
        if bp.ttl == "5m":
            seen_5m = True
        elif seen_5m:
            raise PromptError(
                "a ttl='1h' cache_control block must not come after a ttl='5m' cache_control block. "
                "Note that blocks are processed in the following order: `tools`, `system`, `messages`."
            )
    return found


class PromptCache:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.entries: dict[tuple[str, str, bytes], Entry] = {}
        self._since_sweep = 0

    def reset(self) -> None:
        self.entries.clear()

    def live_entries(self, now: float | None = None) -> int:
        now = self.clock.now() if now is None else now
        return sum(1 for e in self.entries.values() if e.expires > now)

    def account(
        self, *, key: str, model: str, prompt: Prompt, points: list[Breakpoint], min_cacheable: int, now: float
    ) -> Usage:
        """Settle one request against the cache, updating it. `now` is the request start."""
        cumulative = prompt.cumulative()
        usage = Usage()
        # Longest live prefix reachable from any breakpoint.
        read_index, read_entry = -1, None
        for bp in points:
            for j in range(bp.index, max(bp.index - LOOKBACK - 1, -1), -1):
                if j <= read_index:
                    break
                entry = self.entries.get((key, model, prompt.blocks[j].digest))
                if entry is not None and entry.expires > now:
                    read_index, read_entry = j, entry
                    break
        if read_entry is not None:
            read_entry.expires = max(read_entry.expires, now + TTL_SECONDS[read_entry.ttl])
            usage.cache_read = cumulative[read_index]
            usage.read_index = read_index
        # Writes at each breakpoint beyond the read prefix, each covering the tokens since
        # the previous covered position, classed by that breakpoint's TTL.
        covered = usage.cache_read
        for bp in points:
            if bp.index <= read_index or cumulative[bp.index] < min_cacheable:
                continue
            span = cumulative[bp.index] - covered
            if bp.ttl == "1h":
                usage.write_1h += span
            else:
                usage.write_5m += span
            covered = cumulative[bp.index]
            self.entries[(key, model, prompt.blocks[bp.index].digest)] = Entry(
                tokens=covered, ttl=bp.ttl, expires=now + TTL_SECONDS[bp.ttl]
            )
            usage.written.append(bp.index)
        usage.input_tokens = prompt.total - usage.cache_read - usage.cache_creation
        self._maybe_sweep(now)
        return usage

    def _maybe_sweep(self, now: float) -> None:
        self._since_sweep += 1
        if self._since_sweep < 1000:
            return
        self._since_sweep = 0
        for k in [k for k, e in self.entries.items() if e.expires <= now]:
            del self.entries[k]
