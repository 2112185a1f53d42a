"""GET /api/chat/sessions/{sessionKey}/cache-health: one session's cache health."""

from uuid import UUID

from rest_framework.response import Response
from rest_framework.views import APIView

from billing.cache_health import session_cache_health, usage_session_known

from .errors import SessionNotFound
from .models import AgentSession


class SessionCacheHealthView(APIView):
    """A live session's health (flapping from its switch ledger), or an imported Claude Code
    session's (no session row here: flapping from its model sequence)."""

    def get(self, request, key):
        session = AgentSession.objects.filter(user=request.user, key=key).first() if _is_uuid(key) else None
        if session is not None:
            body = session_cache_health(
                user=request.user, session_key=str(session.key), session_pk=session.pk, ttl=session.cache_ttl
            )
        elif usage_session_known(user=request.user, session_key=key):
            body = session_cache_health(user=request.user, session_key=key)
        else:
            raise SessionNotFound()
        return Response(body)


def _is_uuid(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return True
