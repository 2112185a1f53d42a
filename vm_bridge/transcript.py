"""Read per-request usage from Claude Code's JSONL transcripts in the VM.

Claude Code writes `<config dir>/projects/<project>/<sessionId>.jsonl` (sub-agents under
`<sessionId>/subagents/*.jsonl`). Assistant lines carry `message.usage`; one API request
spans several lines (one per content block) that share `requestId`, and `output_tokens`
grows along them, so each request is reported once, from its line with the most output.
"""

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger("vm_bridge.transcript")


@dataclass
class _SessionState:
    offsets: dict[Path, int] = field(default_factory=dict)
    sent: set[str] = field(default_factory=set)


class TranscriptReader:
    def __init__(self, config_dir: Path) -> None:
        self.config_dir = config_dir
        self._state: dict[str, _SessionState] = {}

    def files(self, session_id: str) -> list[Path]:
        projects = self.config_dir / "projects"
        if not projects.is_dir() or "/" in session_id or session_id.startswith("."):
            return []
        found = sorted(projects.glob(f"*/{session_id}.jsonl"))
        found += sorted(projects.glob(f"*/{session_id}/subagents/*.jsonl"))
        return found

    def conversation_file(self, session_id: str) -> Path | None:
        """The session's main-chain transcript (not its sub-agents'), if the agent wrote one."""
        return next((p for p in self.files(session_id) if p.name == f"{session_id}.jsonl"), None)

    def exists(self, session_id: str) -> bool:
        return bool(self.files(session_id))

    def size(self, session_id: str) -> int:
        total = 0
        for path in self.files(session_id):
            try:
                total += path.stat().st_size
            except OSError:
                continue
        return total

    def read_new(self, session_id: str) -> list[dict[str, Any]]:
        """Assistant lines of requests not returned before, one (the fullest) per request."""
        state = self._state.setdefault(session_id, _SessionState())
        best: dict[str, dict[str, Any]] = {}
        for path in self.files(session_id):
            for line in self._new_lines(state, path):
                key = _request_key(line)
                if key is None or key in state.sent:
                    continue
                if key not in best or _output(line) >= _output(best[key]):
                    best[key] = line
        state.sent.update(best)
        return list(best.values())

    def _new_lines(self, state: _SessionState, path: Path) -> list[dict[str, Any]]:
        offset = state.offsets.get(path, 0)
        try:
            with path.open("rb") as fh:
                fh.seek(offset)
                data = fh.read()
        except OSError:
            return []
        # Only whole lines: Claude Code may be in the middle of writing the last one.
        end = data.rfind(b"\n")
        if end < 0:
            return []
        state.offsets[path] = offset + end + 1
        lines = []
        for raw in data[: end + 1].splitlines():
            try:
                obj = json.loads(raw)
            except ValueError:
                logger.warning("skipping an unreadable transcript line in %s", path.name)
                continue
            if isinstance(obj, dict) and obj.get("type") == "assistant":
                lines.append(obj)
        return lines


def _request_key(line: dict[str, Any]) -> str | None:
    message = line.get("message")
    if not isinstance(message, dict) or not isinstance(message.get("usage"), dict):
        return None
    if message.get("model") == "<synthetic>":
        return None  # placeholder lines Claude Code writes itself; no API request behind them
    key = line.get("requestId") or message.get("id")
    return str(key) if key else None


def _output(line: dict[str, Any]) -> int:
    try:
        return int(line["message"]["usage"].get("output_tokens") or 0)
    except (KeyError, TypeError, ValueError, AttributeError):
        return 0


def transcript_record(
    session_id: str, model_id: str | None, line: dict[str, Any], *, turn: int | None = None
) -> dict[str, Any]:
    """The record of one request; `turn`: the bridge's number of the turn it was made in."""
    message = line["message"]
    key = _request_key(line)
    record = {
        "id": key,
        "kind": "request",
        "source": "transcript",
        "sessionId": session_id,
        "turn": turn,
        "requestId": line.get("requestId"),
        "messageId": message.get("id"),
        "model": message.get("model"),
        "modelId": model_id,
        "timestamp": line.get("timestamp"),
        "isSidechain": bool(line.get("isSidechain")),
        "usage": message["usage"],
    }
    diagnostics = message.get("diagnostics") or line.get("diagnostics")
    if isinstance(diagnostics, dict):
        record["diagnostics"] = diagnostics
    return record
