"""The API errors of agent sessions, and how bridge and sandbox failures map onto them."""

from mk0r.errors import ServiceError

from .bridge_client import BridgeError, BridgeErrorKind
from .models import SessionStatus
from .sandboxes import SandboxError


class SessionNotFound(ServiceError):
    # Also for another user's session: existence never leaks.
    status_code = 404
    code = "session_not_found"
    message = "No such session."


class SessionClosed(ServiceError):
    status_code = 409
    code = "session_closed"
    message = "The session is closed."


class SandboxGone(ServiceError):
    # Not retryable: the VM (with the agent, its files and its history) no longer exists.
    status_code = 410
    code = "sandbox_gone"
    message = "The session's sandbox has stopped; start a new session."

    def __init__(self, **kwargs) -> None:
        super().__init__(**{"extra": {"retryable": False}, **kwargs})


def session_not_open(status: str) -> ServiceError:
    """Why a session that is not ready refuses to talk to its agent."""
    if status == SessionStatus.SANDBOX_GONE:
        return SandboxGone()
    return SessionClosed(extra={"status": status})


class SessionBusy(ServiceError):
    # Another request holds the session's lease (sessions_app.leases); it is over within seconds.
    status_code = 409
    code = "session_busy"
    message = "Another model switch or resume of this session is in progress; try again shortly."


class SandboxUnavailable(ServiceError):
    status_code = 503
    code = "sandbox_unavailable"
    message = "No sandbox could be started for the session."


_BRIDGE_ERRORS = {
    BridgeErrorKind.UNREACHABLE: (
        502,
        "agent_unreachable",
        "The agent in the session's sandbox could not be reached.",
    ),
    BridgeErrorKind.TIMEOUT: (504, "agent_timeout", "The agent did not answer in time."),
    BridgeErrorKind.SESSION_LOST: (
        409,
        "agent_session_lost",
        "The agent lost this session; resume it to go on.",
    ),
    BridgeErrorKind.MODEL_REJECTED: (400, "model_rejected", "The agent does not offer that model."),
    BridgeErrorKind.OTHER: (502, "agent_error", "The agent failed to carry out the request."),
}


def api_error_from_bridge(error: BridgeError) -> ServiceError:
    status, code, message = _BRIDGE_ERRORS[error.kind]
    extra = {"retryable": not error.permanent}
    if error.kind == BridgeErrorKind.MODEL_REJECTED and "availableModels" in error.extra:
        extra["availableModels"] = error.extra["availableModels"]
    return ServiceError(message, code=code, status_code=status, extra=extra)


def api_error_from_sandbox(error: SandboxError) -> ServiceError:
    return SandboxUnavailable(extra={"retryable": not error.permanent, "reason": error.message})
