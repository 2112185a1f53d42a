"""The bridge's error answers (`ErrorAnswer`: given instead of a result, with a status) and the
mapping from ACP (JSON-RPC) errors to them."""

from typing import Any

from acp import RequestError

# JSON-RPC codes the agents use (DESIGN.md §5).
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
RESOURCE_NOT_FOUND = -32002

_MAX_AGENT_MESSAGE = 300


class ErrorAnswer(Exception):
    """An answer the bridge gives instead of a result: {code, message, extra} with a status."""

    def __init__(self, status: int, code: str, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "extra": self.extra}


def invalid_request(message: str, **extra: Any) -> ErrorAnswer:
    return ErrorAnswer(400, "invalid_request", message, extra)


def session_lost(session_id: str, why: str = "unknown ACP session") -> ErrorAnswer:
    return ErrorAnswer(409, "agent_session_lost", f"{why}: {session_id}", {"sessionId": session_id})


def agent_message(exc: RequestError) -> str:
    # The agent's JSON-RPC error message, never its stderr; bounded so a chatty agent cannot
    # push large text through error bodies.
    return str(exc)[:_MAX_AGENT_MESSAGE]


def from_acp(exc: RequestError, *, session_id: str | None = None) -> ErrorAnswer:
    """Map an ACP error that has no call-specific meaning."""
    if exc.code == RESOURCE_NOT_FOUND and session_id:
        return session_lost(session_id, "the agent does not know this session")
    return ErrorAnswer(502, "agent_error", f"agent error {exc.code}: {agent_message(exc)}", {"acpCode": exc.code})
