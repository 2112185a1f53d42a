"""GET /api/chat/sessions/{sessionKey}/cache-health: one session's cache health."""

from rest_framework.response import Response
from rest_framework.views import APIView

from billing.usage.cache_health import session_cache_health, usage_session_known

from .errors import SessionNotFound
from .models import AgentSession


class SessionCacheHealthView(APIView):
    """A live session's health (flapping from its switch ledger), or an imported Claude Code
    session's (no session row here: flapping from its model sequence). Both are keyed by a
    UUID: Claude Code names its sessions so, and the URL takes nothing else. `costUsd` is what
    the session's requests have cost so far, as billed."""

    def get(self, request, key):
        session = AgentSession.objects.filter(user=request.user, key=key).first()
        if session is not None:
            body = session_cache_health(
                user=request.user, session_key=str(session.key), session_pk=session.pk, ttl=session.cache_ttl
            )
        elif usage_session_known(user=request.user, session_key=str(key)):
            body = session_cache_health(user=request.user, session_key=str(key))
        else:
            raise SessionNotFound()
        return Response(body)
