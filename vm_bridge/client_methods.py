"""Answers to the calls the agent makes to its client (the bridge).

Nobody sits at this client, so permission requests are answered by a fixed policy; file
access is confined to the session's working directory; terminals are not offered.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

from acp import RequestError

# Preferred permission option kinds per policy, best first.
_POLICY_KINDS = {
    "allow": ("allow_always", "allow_once"),
    "allow_once": ("allow_once", "allow_always"),
    "deny": ("reject_once", "reject_always"),
}


def permission_answer(policy: str, params: dict[str, Any]) -> dict[str, Any]:
    options = params.get("options") or []
    for kind in _POLICY_KINDS[policy]:
        for option in options:
            if isinstance(option, dict) and option.get("kind") == kind and option.get("optionId"):
                return {"outcome": {"outcome": "selected", "optionId": option["optionId"]}}
    # No option fits the policy (e.g. deny with no reject option): decline the request.
    return {"outcome": {"outcome": "cancelled"}}


def confined_path(cwd: str, path: Any) -> Path:
    """Resolve `path` and refuse anything outside the session's cwd (symlinks included)."""
    if not isinstance(path, str) or not path:
        raise RequestError.invalid_params({"path": "required"})
    root = Path(cwd).resolve()
    target = (root / path).resolve()
    if target != root and root not in target.parents:
        raise RequestError.invalid_params({"path": "outside the session directory"})
    return target


def read_text_file(cwd: str, params: dict[str, Any]) -> dict[str, Any]:
    target = confined_path(cwd, params.get("path"))
    try:
        text = target.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise RequestError.resource_not_found(str(params.get("path"))) from None
    except OSError as exc:
        raise RequestError.internal_error({"details": exc.strerror or "read failed"}) from None
    line, limit = params.get("line"), params.get("limit")
    if line is not None or limit is not None:
        lines = text.splitlines(keepends=True)
        start = max(int(line or 1) - 1, 0)
        end = start + int(limit) if limit is not None else None
        text = "".join(lines[start:end])
    return {"content": text}


def write_text_file(cwd: str, params: dict[str, Any]) -> dict[str, Any]:
    target = confined_path(cwd, params.get("path"))
    content = params.get("content")
    if not isinstance(content, str):
        raise RequestError.invalid_params({"content": "required"})
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    except OSError as exc:
        raise RequestError.internal_error({"details": exc.strerror or "write failed"}) from None
    return {}


def build_handler(
    *,
    policy: str,
    session_cwd: Callable[[str], str | None],
    on_update: Callable[[dict[str, Any]], None],
    on_ext_notification: Callable[[str, dict[str, Any]], None],
):
    """The JSON-RPC method handler for the agent connection."""

    async def handle(method: str, params: Any, is_notification: bool) -> Any:
        params = params if isinstance(params, dict) else {}
        if method == "session/update":
            # Synchronous on purpose: no await before the update is queued keeps the
            # order the agent sent, and ahead of the prompt's response.
            on_update(params)
            return None
        if method.startswith("_"):
            if is_notification:
                on_ext_notification(method, params)
                return None
            raise RequestError.method_not_found(method)
        if is_notification:
            return None
        if method == "session/request_permission":
            return permission_answer(policy, params)
        if method in ("fs/read_text_file", "fs/write_text_file"):
            cwd = session_cwd(str(params.get("sessionId") or ""))
            if cwd is None:
                raise RequestError.resource_not_found(str(params.get("sessionId")))
            fn = read_text_file if method == "fs/read_text_file" else write_text_file
            return fn(cwd, params)
        # terminal/* and anything newer: not offered by this client.
        raise RequestError.method_not_found(method)

    return handle
