from datetime import datetime
from functools import cache
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import QuerySet

from billing.switch_context import (
    PG_COLUMNS,
    PG_JOINS,
    SwitchContext,
    pg_params,
    switch_context_from_pg,
    switch_context_load,
)
from mk0r.db import ModelColumns, prepared_cursor

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


def session_with_switch_context(
    *, user, key: UUID | str, now: datetime, for_update: bool = False
) -> tuple[AgentSession, SwitchContext]:
    """The user's session (locked when `for_update`) and what a quote reads about it.

    Every quote and switch starts here, so on PostgreSQL it is one statement, prepared once per
    connection, instead of four ORM queries, each of which costs more in Python than in the server.
    """
    if connection.vendor != "postgresql":
        session = session_get(user=user, key=key, for_update=for_update)
        return session, switch_context_load(session_pk=session.pk, session_key=str(session.key), now=now)
    try:
        key = key if isinstance(key, UUID) else UUID(str(key))
    except ValueError:
        raise SessionNotFound() from None
    sql, session_columns = _session_with_context_sql(for_update)
    with prepared_cursor() as cursor:
        cursor.execute(sql, [*pg_params(now), key, user.pk])
        row = cursor.fetchone()
    if row is None:
        raise SessionNotFound()
    context = switch_context_from_pg(row[session_columns.span.stop :])
    return session_columns.build(row), context


@cache
def _session_with_context_sql(for_update: bool) -> tuple[str, ModelColumns]:
    session = ModelColumns(AgentSession, "s")
    lock = " FOR UPDATE OF s" if for_update else ""
    # Built from the model's own metadata and constants; every value is a parameter.
    sql = (
        f"SELECT {session.sql}, {PG_COLUMNS} FROM {AgentSession._meta.db_table} s"  # noqa: S608
        f"{PG_JOINS} WHERE s.key = %s AND s.user_id = %s{lock}"
    )
    return sql, session
