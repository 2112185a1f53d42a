import contextlib
import contextvars
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import httpx

logger = logging.getLogger(__name__)

# httpx logs every request at INFO. A fresh bridge answers 503 to a dozen health polls before
# it is up, which would be a dozen log lines per session start: while this thread (or task)
# polls, its httpx records are dropped, and the wait is logged once, when it ends.
_polling = contextvars.ContextVar("bridge_health_polling", default=False)


class _QuietWhilePolling(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _polling.get()


logging.getLogger("httpx").addFilter(_QuietWhilePolling())


@contextlib.contextmanager
def httpx_quiet() -> Iterator[None]:
    """No per-request httpx log lines from this thread (or task) inside the block."""
    token = _polling.set(True)
    try:
        yield
    finally:
        _polling.reset(token)


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

    def exists(self, *, sandbox_id: str) -> bool:
        """Whether the sandbox still runs (its bridge may still be starting or stuck). SandboxError
        when the provider cannot tell."""
        ...

    def bridge_headers(self, *, access_token: str) -> dict[str, str]: ...


def wait_for_bridge(url: str, token: str, *, headers: dict[str, str] | None = None, timeout: float) -> None:
    """Poll the bridge's /health until it answers; a fresh VM needs a moment."""
    started = time.monotonic()
    deadline = started + timeout
    last_error = "no answer"
    polls = 0
    with httpx_quiet():
        while time.monotonic() < deadline:
            polls += 1
            try:
                response = httpx.get(
                    f"{url}/health", headers={"Authorization": f"Bearer {token}", **(headers or {})}, timeout=2.0
                )
                if response.status_code == 200:
                    logger.info("bridge %s up after %.1f s (%d health checks)", url, time.monotonic() - started, polls)
                    return
                last_error = f"status {response.status_code}"
            except httpx.TransportError as exc:
                last_error = type(exc).__name__
            time.sleep(0.1)
    logger.warning("bridge %s not up after %.1f s (%d health checks, last: %s)", url, timeout, polls, last_error)
    raise SandboxError(f"The bridge did not come up within {timeout:.0f}s ({last_error}).", permanent=False)
