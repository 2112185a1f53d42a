"""Prompt-cache state of one session, per model, as pure logic.

Anthropic's cache is keyed on (model, exact prefix). After each request the model's
cache holds entries ending at the request's breakpoints: the prefix it read (refreshed)
and the prefix it wrote (read + written tokens). An entry lives for its TTL (5 minutes
or 1 hour) counted from the start of the last request that read or wrote it.

`CacheTracker` replays requests in memory (log import, simulations, the `quote`
command); `CacheSnapshot` is its immutable view that the quote consumes. The ORM side
(`billing.quotes.cache_store.cache_state_record_requests`) persists the same state through this
class so that both paths agree.

Token counts are in each model's own tokens; pass canonical API model ids
(`model_resolve` gives them) so a dated and an undated id share one cache.

The cache is also the platform's that answered: Anthropic's API keeps one per workspace,
Google Vertex AI one per project, so a prefix written through one is cold on the other.
Entries are kept per (platform, model); a request's id names its platform
(`request_platform`), and a request without one runs where the session's last one did.

The prompt's fixed start. Claude Code marks the end of its system prompt and tools with a
breakpoint of its own, so that part is cached by every request that reaches it, whatever
happens to the conversation after it. When a request reads less than the previous request
of its model left cached, its prompt was rewritten after what it still read (compaction,
cleared tool results, a changed reminder): that read is the fixed start. So is the first
read of a model in a session, which found what an earlier session cached. The tracker marks
that entry (`fixed_start`), always keeps it (its length even after it expires), and renews
it with every request that reads past it: the request after the next rewrite is expected
to read it, not nothing. (In the sample transcripts the reads after rewrites land on the
same lengths again and again: 34,284 tokens three times in one session, 16,701 in three.)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from billing.catalog.cost_engine import Usage

TTL_SECONDS = {"5m": 300, "1h": 3600}
TTL_DELTAS = {name: timedelta(seconds=seconds) for name, seconds in TTL_SECONDS.items()}
# Entries kept per model: its fixed start and the most recently used others. In a plain
# chat loop these are also the longest, so the cap changes nothing there; it matters when
# the prompt gets shorter (compaction, /clear, a rewritten prefix): then the new, shorter
# entries are the ones read next and the older, longer ones are dead. Keeping the longest
# instead lost the live conversation after every compaction: on the main chains of the
# sample transcripts (data/claude-code-logs) 88.5% of cache reads were predicted within 1%
# that way, 95.9% keeping the most recent.
MAX_ENTRIES_PER_MODEL = 4

ANTHROPIC_API = "anthropic"
VERTEX_AI = "vertex"
# Vertex AI's request ids; Anthropic's own start `req_` too. In the sample transcripts ten
# sessions alternate between the two request by request (a failover), and each request reads
# only what requests of its own platform wrote.
VERTEX_REQUEST_ID_PREFIX = "req_vrtx_"


def request_platform(request_id: str) -> str | None:
    """The platform a request id names; None when there is no id (an agent's per-turn
    total, a gateway that drops it): such a request runs where the session's last one did."""
    if not request_id:
        return None
    return VERTEX_AI if request_id.startswith(VERTEX_REQUEST_ID_PREFIX) else ANTHROPIC_API


class TrackedRequest(NamedTuple):
    """One request as the persisted cache state takes it (`platform` None: unknown)."""

    model: str
    usage: Usage
    at: datetime
    platform: str | None = None


class CacheEntryState(NamedTuple):
    """One cached prefix (a tuple: the replay makes a few per request)."""

    model: str
    prefix_tokens: int
    ttl: str
    expires_at: datetime
    platform: str = ANTHROPIC_API
    fixed_start: bool = False  # the prompt's fixed start (see the module docstring)


@dataclass(frozen=True, slots=True)
class CacheSnapshot:
    """What the quote needs to know about one session's cache at a moment."""

    ttl_policy: str = "5m"
    current_model: str | None = None
    # Size of the conversation the next turn will send before its new message:
    # input + cache read + cache write + output of the last request, in current_model's tokens.
    context_tokens: int = 0
    last_request_at: datetime | None = None
    entries: tuple[CacheEntryState, ...] = ()
    seen_models: frozenset[str] = field(default_factory=frozenset)
    # The platform the last request ran on: where the next one is expected to run.
    platform: str = ANTHROPIC_API

    def warm_prefix(self, *, model: str, prefix_tokens: int, at: datetime, platform: str | None = None) -> int:
        """Longest warm cached prefix of `model` on `platform` (default: the session's current
        one) that a prompt of `prefix_tokens` can read."""
        return _longest_warm(
            self.entries, model=model, platform=platform or self.platform, prefix_tokens=prefix_tokens, at=at
        )

    def entries_of(self, model: str, platform: str | None = None) -> list[CacheEntryState]:
        """The entries of `model` on `platform` (default: the current one), warm or not."""
        platform = platform or self.platform
        return [e for e in self.entries if e.model == model and e.platform == platform]

    def has_cached(self, model: str) -> bool:
        """Whether `model` ever held a cache entry in this session (warm or expired)."""
        return model in self.seen_models


class CacheTracker:
    """Mutable, in-memory cache state of one session; feed it every request in order."""

    def __init__(self, *, ttl_policy: str = "5m") -> None:
        if ttl_policy not in TTL_SECONDS:
            raise ValueError(f"ttl_policy must be one of {tuple(TTL_SECONDS)}")
        self.ttl_policy = ttl_policy
        self.current_model: str | None = None
        self.context_tokens = 0
        self.last_request_at: datetime | None = None
        self.platform = ANTHROPIC_API
        # By (platform, model), each list by prefix length.
        self.entries: dict[tuple[str, str], list[CacheEntryState]] = {}
        self.seen_models: set[str] = set()

    @classmethod
    def from_snapshot(cls, snapshot: CacheSnapshot) -> CacheTracker:
        tracker = cls(ttl_policy=snapshot.ttl_policy)
        tracker.current_model = snapshot.current_model
        tracker.context_tokens = snapshot.context_tokens
        tracker.last_request_at = snapshot.last_request_at
        tracker.platform = snapshot.platform
        for entry in sorted(snapshot.entries, key=_prefix_tokens):
            tracker.entries.setdefault((entry.platform, entry.model), []).append(entry)
        tracker.seen_models = set(snapshot.seen_models)
        return tracker

    def predict(self, *, model: str, prefix_tokens: int, at: datetime, platform: str | None = None) -> int:
        """Expected `cache_read_input_tokens` of a request to `model` on `platform` (default:
        the current one) whose cacheable prompt prefix is `prefix_tokens` long, starting at `at`."""
        platform = platform or self.platform
        entries = self.entries.get((platform, model), ())
        return _longest_warm(entries, model=model, platform=platform, prefix_tokens=prefix_tokens, at=at)

    def record(self, *, model: str, usage: Usage, at: datetime, platform: str | None = None) -> None:
        """Apply one request (started at `at`, on `platform`; None: the current one) to the state."""
        platform = platform or self.platform
        previous = self.entries.get((platform, model), ())
        fixed = None
        # The warm entries (strictly before expiry) by prefix length; the same prefix twice:
        # the later write or refresh wins unless the other one lives longer.
        by_length: dict[int, CacheEntryState] = {}
        for entry in previous:
            if entry.fixed_start:
                fixed = entry
            if at < entry.expires_at:
                _keep(by_length, entry)
        read = usage.cache_read_tokens
        if read:
            # The entry that was read gets a new lifetime from this request's start; one we did
            # not see being written (state started mid-session) lives by the session's policy.
            entry = by_length.get(read)
            ttl = entry.ttl if entry is not None else self.ttl_policy
            by_length[read] = CacheEntryState(model, read, ttl, at + TTL_DELTAS[ttl], platform)
            # The fixed start: a first read, or a read of less than the previous request left
            # cached (a rewrite; most reads are of the longest entry, which rules that out at once).
            if not previous or (read < previous[-1].prefix_tokens and read < _last_request_end(previous)):
                fixed = by_length[read]
            elif fixed is not None and fixed.prefix_tokens < read:
                # A read past the fixed start passed its breakpoint too, which renews it.
                length, ttl = fixed.prefix_tokens, fixed.ttl
                fixed = by_length[length] = CacheEntryState(model, length, ttl, at + TTL_DELTAS[ttl], platform, True)
        # 1h breakpoints must precede 5m ones in a prompt, so the 1h part is the shorter prefix.
        end = read
        write_1h, write_5m = usage.cache_write_1h_tokens, usage.cache_write_5m_tokens
        if write_1h:
            end += write_1h
            _keep(by_length, CacheEntryState(model, end, "1h", at + TTL_DELTAS["1h"], platform))
        if write_5m:
            end += write_5m
            _keep(by_length, CacheEntryState(model, end, "5m", at + TTL_DELTAS["5m"], platform))
        if write_5m or write_1h:
            # How the session writes its tail is its TTL policy (subscription: 1h; API key: 5m).
            self.ttl_policy = "5m" if write_5m else "1h"
        if fixed is not None:
            # Kept whatever its last use, and kept expired: its length is what counts then.
            entry = by_length.pop(fixed.prefix_tokens, fixed)
            fixed = entry if entry.fixed_start else entry._replace(fixed_start=True)
        kept = [e._replace(fixed_start=False) if e.fixed_start else e for e in by_length.values()]
        room = MAX_ENTRIES_PER_MODEL - (fixed is not None)
        if len(kept) > room:
            # Evict the least recently used: an entry's last use is its expiry minus its TTL.
            # (A stable sort: among entries used by this same request, the later one wins.)
            kept.sort(key=_last_use)
            kept = kept[-room:]
        if fixed is not None:
            kept.append(fixed)
        if kept:
            kept.sort(key=_prefix_tokens)
            self.seen_models.add(model)
        self.entries[(platform, model)] = kept
        self.platform = platform
        self.current_model = model
        self.context_tokens = usage.context_tokens
        self.last_request_at = at

    def snapshot(self) -> CacheSnapshot:
        return CacheSnapshot(
            ttl_policy=self.ttl_policy,
            current_model=self.current_model,
            context_tokens=self.context_tokens,
            last_request_at=self.last_request_at,
            entries=tuple(e for entries in self.entries.values() for e in entries),
            seen_models=frozenset(self.seen_models),
            platform=self.platform,
        )


def _longest_warm(
    entries: Iterable[CacheEntryState], *, model: str, platform: str, prefix_tokens: int, at: datetime
) -> int:
    """The longest entry of `model` on `platform` still warm at `at` that a prompt of
    `prefix_tokens` reads."""
    best = 0
    for entry in entries:
        if (
            best < entry.prefix_tokens <= prefix_tokens
            and at < entry.expires_at
            and entry.model == model
            and entry.platform == platform
        ):
            best = entry.prefix_tokens
    return best


def _last_request_end(entries: Iterable[CacheEntryState]) -> int:
    """How much the last request of these entries' model left cached: the longest of the
    entries it read or wrote (they share the latest last use)."""
    return max((_last_use(e), e.prefix_tokens) for e in entries)[1]


def _keep(by_length: dict[int, CacheEntryState], entry: CacheEntryState) -> None:
    previous = by_length.get(entry.prefix_tokens)
    if previous is None or entry.expires_at >= previous.expires_at:
        by_length[entry.prefix_tokens] = entry


def _last_use(entry: CacheEntryState) -> datetime:
    return entry.expires_at - TTL_DELTAS[entry.ttl]


def _prefix_tokens(entry: CacheEntryState) -> int:
    return entry.prefix_tokens


def cache_snapshot_warm(
    *, model: str, prefix_tokens: int, idle_seconds: float, now: datetime, ttl: str = "5m"
) -> CacheSnapshot:
    """A session that has been on `model` with `prefix_tokens` of conversation, all of it
    cached by its last request, idle for `idle_seconds` before `now`.

    Built by replaying one request through the tracker, so it means exactly what a
    recorded session would: the last request read nothing and wrote the whole prefix
    (`prefix_tokens` is then also the next turn's context size).
    """
    tracker = CacheTracker(ttl_policy=ttl)
    if prefix_tokens > 0:
        written = {"cache_write_1h_tokens" if ttl == "1h" else "cache_write_5m_tokens": prefix_tokens}
        tracker.record(model=model, usage=Usage(**written), at=now - timedelta(seconds=idle_seconds))
    return tracker.snapshot()
