"""What a failed bridge call means for its session: a passing failure, or a sandbox that is gone.

After a restarted machine or an expired VM, a session's bridge stops answering for good, and
retrying cannot help. The provider says whether the sandbox still exists; when it does not,
the session is marked `sandbox_gone` and answers 410 from then on.
"""

import logging

from django.utils import timezone

from mk0r.errors import ServiceError

from .bridge_client import BridgeError, BridgeErrorKind
from .errors import SandboxGone, api_error_from_bridge
from .models import AgentSession, SessionStatus
from .sandboxes import SandboxError, provider_for

logger = logging.getLogger(__name__)


def session_bridge_failure(*, session: AgentSession, error: BridgeError) -> ServiceError:
    """The API error for a failed bridge call. A bridge that cannot be reached is asked about
    at its provider: when its sandbox is gone, the session is marked so and the answer is 410
    `sandbox_gone` (retrying cannot help) instead of a retryable 502."""
    if error.kind != BridgeErrorKind.UNREACHABLE or not session.sandbox_id:
        return api_error_from_bridge(error)
    try:
        gone = not provider_for(session.provider).exists(sandbox_id=session.sandbox_id)
    except SandboxError as exc:
        logger.warning("session %s: could not tell whether sandbox %s exists: %s", session.key, session.sandbox_id, exc)
        return api_error_from_bridge(error)
    if not gone:
        return api_error_from_bridge(error)
    logger.warning("session %s: sandbox %s is gone", session.key, session.sandbox_id)
    reason = f"The sandbox {session.sandbox_id} stopped."
    AgentSession.objects.filter(pk=session.pk, status=SessionStatus.READY).update(
        status=SessionStatus.SANDBOX_GONE, last_error=reason, updated_at=timezone.now()
    )
    session.status = SessionStatus.SANDBOX_GONE
    return SandboxGone()
