"""One E2B sandbox per session, built from the template in docker/e2b/.

The bridge is started in the background inside the VM and reached over
https://<port>-<sandbox>.<domain>; public traffic is closed, so every request
carries the sandbox's traffic access token as well as the bridge token.
"""

import logging
import secrets

from django.conf import settings
from e2b import Sandbox as E2BSandbox
from e2b import SandboxState
from e2b.exceptions import (
    AuthenticationException,
    InvalidArgumentException,
    NotFoundException,
    RateLimitException,
    SandboxException,
    TemplateException,
    TimeoutException,
)

from .base import Sandbox, SandboxError, wait_for_bridge

logger = logging.getLogger(__name__)

TRAFFIC_TOKEN_HEADER = "e2b-traffic-access-token"
SANDBOX_CWD = "/home/user/app"
BRIDGE_START_TIMEOUT = 60.0


def _api_opts() -> dict[str, str]:
    opts = {"api_key": settings.E2B_API_KEY}
    if settings.E2B_DOMAIN:
        opts["domain"] = settings.E2B_DOMAIN
    return opts


def _mapped(exc: Exception, action: str) -> SandboxError:
    """E2B's exceptions, sorted into 'try again later' and 'will fail again'."""
    if isinstance(exc, RateLimitException | TimeoutException):
        return SandboxError(f"E2B could not {action} in time: {exc}", permanent=False)
    if isinstance(exc, AuthenticationException | InvalidArgumentException | TemplateException | NotFoundException):
        return SandboxError(f"E2B refused to {action}: {exc}", permanent=True)
    return SandboxError(f"E2B failed to {action}: {exc}", permanent=False)


class E2BProvider:
    name = "e2b"

    def start(self, *, session_key: str, user_id: int) -> Sandbox:
        if not settings.E2B_API_KEY:
            raise SandboxError("E2B_API_KEY is not set.", permanent=True)
        bridge_token = secrets.token_urlsafe(32)
        try:
            sandbox = E2BSandbox.create(
                template=settings.E2B_TEMPLATE,
                timeout=settings.E2B_SANDBOX_TIMEOUT,
                metadata={"sessionKey": session_key, "userId": str(user_id)},
                network={"allow_public_traffic": False},
                **_api_opts(),
            )
        except (SandboxException, AuthenticationException) as exc:
            raise _mapped(exc, "create the sandbox") from exc
        try:
            sandbox.commands.run(
                settings.E2B_BRIDGE_COMMAND,
                background=True,
                timeout=0,  # the bridge runs for the sandbox's whole life
                envs={
                    "BRIDGE_TOKEN": bridge_token,
                    "BRIDGE_PORT": str(settings.BRIDGE_PORT),
                    "MK0R_SANDBOX_ID": sandbox.sandbox_id,
                    "MK0R_USAGE_URL": f"{settings.PUBLIC_BASE_URL.rstrip('/')}/api/internal/usage",
                },
            )
            access_token = sandbox.traffic_access_token or ""
            url = f"https://{sandbox.get_host(settings.BRIDGE_PORT)}"
            wait_for_bridge(
                url,
                bridge_token,
                headers=self.bridge_headers(access_token=access_token),
                timeout=BRIDGE_START_TIMEOUT,
            )
        except (SandboxException, AuthenticationException, SandboxError) as exc:
            self._kill_quietly(sandbox.sandbox_id)
            raise exc if isinstance(exc, SandboxError) else _mapped(exc, "start the bridge") from exc
        return Sandbox(
            sandbox_id=sandbox.sandbox_id,
            bridge_url=url,
            bridge_token=bridge_token,
            cwd=SANDBOX_CWD,
            access_token=access_token,
        )

    def stop(self, *, sandbox_id: str) -> None:
        try:
            E2BSandbox.kill(sandbox_id, **_api_opts())
        except NotFoundException:
            return  # already gone: closing is idempotent
        except (SandboxException, AuthenticationException) as exc:
            raise _mapped(exc, "kill the sandbox") from exc

    def exists(self, *, sandbox_id: str) -> bool:
        """Running in E2B. Killed or timed out is not found; paused counts as gone too, since
        nothing here resumes a sandbox and its bridge does not answer meanwhile."""
        try:
            info = E2BSandbox.get_info(sandbox_id, **_api_opts())
        except NotFoundException:
            return False
        except (SandboxException, AuthenticationException) as exc:
            raise _mapped(exc, "look the sandbox up") from exc
        return info.state == SandboxState.RUNNING

    def bridge_headers(self, *, access_token: str) -> dict[str, str]:
        return {TRAFFIC_TOKEN_HEADER: access_token} if access_token else {}

    def _kill_quietly(self, sandbox_id: str) -> None:
        try:
            E2BSandbox.kill(sandbox_id, **_api_opts())
        except Exception:  # noqa: BLE001 - best effort after a failed start; the first error matters
            logger.warning("could not kill sandbox %s after a failed start", sandbox_id)
