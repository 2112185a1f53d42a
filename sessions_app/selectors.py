from uuid import UUID

from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from .errors import SessionNotFound
from .models import AgentSession


def session_list(*, user) -> QuerySet[AgentSession]:
    return AgentSession.objects.filter(user=user).order_by("-created_at")


def session_get(*, user, key: UUID | str, for_update: bool = False) -> AgentSession:
    """The user's session by key; another user's session is as unknown as a missing one."""
    queryset = AgentSession.objects.select_for_update() if for_update else AgentSession.objects
    try:
        return queryset.get(key=key, user=user)
    except (AgentSession.DoesNotExist, ValidationError, ValueError):
        raise SessionNotFound() from None
