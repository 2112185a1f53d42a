"""Claude-Code-style JSONL transcript, so the bridge's usage relay reads exact usage and the
bridge can count the conversation (`/session/count_tokens`).

One `user` line per prompt and one `assistant` line per API request under
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


def append_user(*, cwd: str, session_id: str, text: str, parent_uuid: str | None) -> str:
    """Append the user's prompt; returns its uuid (the next line's parentUuid)."""
    return _append(
        cwd=cwd, session_id=session_id, kind="user", message={"role": "user", "content": text}, parent_uuid=parent_uuid
    )


def append_assistant(
    *, cwd: str, session_id: str, request_id: str | None, message: dict, parent_uuid: str | None
) -> str:
    """Append one API request's reply; returns its uuid (the next line's parentUuid)."""
    return _append(
        cwd=cwd,
        session_id=session_id,
        kind="assistant",
        message=message,
        parent_uuid=parent_uuid,
        request_id=request_id,
    )


def _append(
    *, cwd: str, session_id: str, kind: str, message: dict, parent_uuid: str | None, request_id: str | None = None
) -> str:
    line_uuid = str(uuid.uuid4())
    now = dt.datetime.now(dt.UTC)
    line = {
        "parentUuid": parent_uuid,
        "isSidechain": False,
        "userType": "external",
        "cwd": cwd,
        "sessionId": session_id,
        "version": "devstack",
        "type": kind,
        "message": message,
        **({"requestId": request_id} if kind == "assistant" else {}),
        "uuid": line_uuid,
        "timestamp": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    path = transcript_path(cwd, session_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(line, separators=(",", ":")) + "\n")
    return line_uuid
