"""Usage records for the backend, built after each turn (docs/bridge-contract.md, usage relay).

Per-request records come from Claude Code's transcript when it has one for the session; a
turn none of whose transcript lines are there yet is sent as one `acp_turn` record from the
ACP `PromptResponse.usage`. Every request record names its turn (`turn`), so the backend
replaces a turn's `acp_turn` record when that turn's transcript records follow. Rate-limit
events the agent surfaced during the turn ride along.
"""

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .transcript import TranscriptReader, transcript_record

logger = logging.getLogger("vm_bridge.usage")

_POLL = 0.1
# The transcript is complete once it stopped growing for this long.
_SETTLE = 0.25


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def acp_turn_record(session_id: str, turn_no: int, model_id: str | None, usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"{session_id}:turn:{turn_no}",
        "kind": "request",
        "source": "acp_turn",
        "sessionId": session_id,
        "turn": turn_no,
        "model": None,
        "modelId": model_id,
        "timestamp": now_iso(),
        "usage": {
            "input_tokens": usage.get("inputTokens", 0),
            "cache_creation_input_tokens": usage.get("cachedWriteTokens", 0),
            "cache_read_input_tokens": usage.get("cachedReadTokens", 0),
            "output_tokens": usage.get("outputTokens", 0),
        },
    }


def _find_rate_limit_infos(obj: Any, depth: int = 0) -> list[dict[str, Any]]:
    # Agents put rate-limit info in different places (claude-agent-acp: a usage_update's
    # `_meta["_claude/rateLimit"]`), so look everywhere, not too deep.
    if depth > 6:
        return []
    if isinstance(obj, dict):
        keys = set(obj)
        if "rateLimitType" in keys or "rate_limit_type" in keys or {"resetsAt", "utilization"} <= keys:
            return [obj]
        return [found for value in obj.values() for found in _find_rate_limit_infos(value, depth + 1)]
    if isinstance(obj, list):
        return [found for value in obj for found in _find_rate_limit_infos(value, depth + 1)]
    return []


def rate_limit_records(session_id: str, payload: Any) -> list[dict[str, Any]]:
    records = []
    for info in _find_rate_limit_infos(payload):
        kind = info.get("rateLimitType") or info.get("rate_limit_type") or "unknown"
        resets_at = info.get("resetsAt", info.get("resets_at"))
        utilization = info.get("utilization")
        record = {
            # Each new reading of a window is a record of its own (calibration needs them all);
            # the same reading reported twice is one.
            "id": f"{session_id}:rl:{resets_at}:{kind}:{utilization}",
            "kind": "rate_limit",
            "sessionId": session_id,
            "timestamp": now_iso(),
            "rateLimitType": kind,
            "resetsAt": resets_at,  # seconds or milliseconds, as the agent gave it
            "utilization": utilization,
        }
        if "status" in info:
            record["status"] = info["status"]
        records.append(record)
    return records


class UsageCollector:
    def __init__(
        self,
        *,
        relay: Any,
        transcripts: TranscriptReader,
        transcript_wait: float,
        expect_transcripts: Callable[[], bool] = lambda: False,
    ) -> None:
        self.relay = relay
        self.transcripts = transcripts
        self.transcript_wait = transcript_wait
        # Claude Code agents write transcripts; wait for a first one instead of falling back.
        self.expect_transcripts = expect_transcripts
        # Per session: (turn start, modelId) of every turn, in order (the n-th is turn n), to
        # give each transcript line the turn and model it belongs to even when it is read late.
        self._turns: dict[str, list[tuple[datetime, str | None]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def turn_started(self, session_id: str, model_id: str | None) -> None:
        # Called once per turn, in order, as the session manager numbers them: call n is turn n.
        # Kept to the millisecond, as transcripts stamp their lines: a line written in the turn's
        # first millisecond is the turn's, not the one before.
        now = datetime.now(UTC)
        started = now.replace(microsecond=now.microsecond // 1000 * 1000)
        self._turns.setdefault(session_id, []).append((started, model_id))

    async def turn_finished(
        self,
        *,
        session_id: str,
        turn_no: int,
        model_id: str | None,
        usage: dict[str, Any] | None,
        rate_limits: list[dict[str, Any]],
    ) -> None:
        # One collector per session at a time: two overlapping reads must not split a turn.
        async with self._locks.setdefault(session_id, asyncio.Lock()):
            try:
                records = await self._turn_records(session_id, turn_no, model_id, usage)
                self.relay.enqueue(records + rate_limits)
            except Exception:
                logger.exception("could not build the usage records of a turn")

    async def _turn_records(
        self, session_id: str, turn_no: int, model_id: str | None, usage: dict[str, Any] | None
    ) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        if self.transcripts.exists(session_id) or self.expect_transcripts():
            lines = await self._wait_for_transcript(session_id)
            records = self._transcript_records(session_id, lines, turn_no, model_id)
        if usage is not None and not any(r["turn"] == turn_no for r in records):
            # The agent's total stands in for the turn until its transcript lines are read.
            records.append(acp_turn_record(session_id, turn_no, model_id, usage))
        return records

    def _transcript_records(
        self, session_id: str, lines: list[dict[str, Any]], turn_no: int, model_id: str | None
    ) -> list[dict[str, Any]]:
        records = []
        for line in lines:
            turn, model = self._turn_at(session_id, line, (turn_no, model_id))
            records.append(transcript_record(session_id, model, line, turn=turn))
        return records

    def _turn_at(
        self, session_id: str, line: dict[str, Any], fallback: tuple[int, str | None]
    ) -> tuple[int, str | None]:
        """The turn (number, modelId) a line was written in: the last one started before it.

        A line without a readable time, or older than every turn, belongs to the turn being read.
        """
        try:
            written = datetime.fromisoformat(str(line.get("timestamp")).replace("Z", "+00:00"))
        except ValueError:
            return fallback
        if written.tzinfo is None:
            written = written.replace(tzinfo=UTC)  # Claude Code writes UTC
        found = fallback
        for number, (started, model_id) in enumerate(self._turns.get(session_id, []), start=1):
            if started <= written:
                found = (number, model_id)
        return found

    async def _wait_for_transcript(self, session_id: str) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.transcript_wait
        size, quiet_since = -1, loop.time()
        while loop.time() < deadline:
            current = self.transcripts.size(session_id)
            if current != size:
                size, quiet_since = current, loop.time()
            elif size > 0 and loop.time() - quiet_since >= _SETTLE:
                break
            await asyncio.sleep(_POLL)
        return self.transcripts.read_new(session_id)

    def sweep(self) -> None:
        """Send transcript lines written after their turn's records went out (e.g. at shutdown)."""
        for session_id, turns in self._turns.items():
            lines = self.transcripts.read_new(session_id)
            if lines:
                self.relay.enqueue(self._transcript_records(session_id, lines, len(turns), turns[-1][1]))
