"""Claude-Code-style JSONL transcript, so the bridge's usage relay reads exact usage.

One `assistant` line per API request under
`$CLAUDE_CONFIG_DIR/projects/<cwd, every non-alphanumeric character as '-'>/<sessionId>.jsonl`
(Claude Code's own naming; for ordinary paths that is `/` replaced by `-`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import uuid
from pathlib import Path


def config_dir() -> Path:
    return Path(os.environ.get("CLAUDE_CONFIG_DIR") or Path.home() / ".claude")


def transcript_path(cwd: str, session_id: str, config: Path | None = None) -> Path:
    return (config or config_dir()) / "projects" / re.sub(r"[^A-Za-z0-9]", "-", cwd) / f"{session_id}.jsonl"


def append_assistant(*, cwd: str, session_id: str, request_id: str | None, message: dict,
                     parent_uuid: str | None) -> str:
    """Append one line; returns its uuid (the next line's parentUuid)."""
    line_uuid = str(uuid.uuid4())
    now = dt.datetime.now(dt.UTC)
    line = {
        "parentUuid": parent_uuid,
        "isSidechain": False,
        "userType": "external",
        "cwd": cwd,
        "sessionId": session_id,
        "version": "devstack",
        "type": "assistant",
        "message": message,
        "requestId": request_id,
        "uuid": line_uuid,
        "timestamp": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    path = transcript_path(cwd, session_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(line, separators=(",", ":")) + "\n")
    return line_uuid
