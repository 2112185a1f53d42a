"""Attach every session to one bridge that is already running (BRIDGE_STATIC_URL).

For development against a bridge started by hand, and for tests that share one
bridge between many sessions (one agent, many ACP sessions, as in a VM).
"""

from django.conf import settings

from .base import Sandbox, SandboxError


class StaticProvider:
    name = "static"

    def start(self, *, session_key: str, user_id: int) -> Sandbox:  # noqa: ARG002
        if not settings.BRIDGE_STATIC_URL:
            raise SandboxError("BRIDGE_STATIC_URL is not set.", permanent=True)
        return Sandbox(
            sandbox_id="static",
            bridge_url=settings.BRIDGE_STATIC_URL,
            bridge_token=settings.BRIDGE_STATIC_TOKEN,
            cwd=str(settings.LOCAL_SANDBOX_ROOT / session_key),
        )

    def stop(self, *, sandbox_id: str) -> None:
        """The shared bridge outlives its sessions."""

    def exists(self, *, sandbox_id: str) -> bool:  # noqa: ARG002
        # Started by hand and never stopped from here: an unreachable one is down for a while.
        return True

    def bridge_headers(self, *, access_token: str) -> dict[str, str]:  # noqa: ARG002
        return {}
