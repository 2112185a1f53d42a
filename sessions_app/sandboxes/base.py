import time
from dataclasses import dataclass
from typing import Protocol

import httpx


@dataclass(frozen=True)
class Sandbox:
    sandbox_id: str
    bridge_url: str
    bridge_token: str
    cwd: str
    # Provider-specific secret the bridge's public host needs (E2B's traffic access token).
    access_token: str = ""


class SandboxError(Exception):
    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


class SandboxProvider(Protocol):
    name: str

    def start(self, *, session_key: str, user_id: int) -> Sandbox: ...

    def stop(self, *, sandbox_id: str) -> None: ...

    def bridge_headers(self, *, access_token: str) -> dict[str, str]: ...


def wait_for_bridge(url: str, token: str, *, headers: dict[str, str] | None = None, timeout: float) -> None:
    """Poll the bridge's /health until it answers; a fresh VM needs a moment."""
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    while time.monotonic() < deadline:
        try:
            response = httpx.get(
                f"{url}/health", headers={"Authorization": f"Bearer {token}", **(headers or {})}, timeout=2.0
            )
            if response.status_code == 200:
                return
            last_error = f"status {response.status_code}"
        except httpx.TransportError as exc:
            last_error = type(exc).__name__
        time.sleep(0.1)
    raise SandboxError(f"The bridge did not come up within {timeout:.0f}s ({last_error}).", permanent=False)
