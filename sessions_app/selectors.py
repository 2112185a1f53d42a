from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import QuerySet

from billing.quotes.switch_context import (
    PG_COLUMNS,
    PG_JOINS,
    SwitchContext,
    pg_params,
    switch_context_from_pg,
    switch_context_load,
)
from billing.usage.turn_costs import turn_costs_billed
from billing.usage.validation import usage_turn_key
from mk0r.db import ModelColumns, prepared_cursor

from .errors import SessionNotFound
from .models import AgentSession, ChatTurn


def session_list(*, user) -> QuerySet[AgentSession]:
    return AgentSession.objects.filter(user=user).order_by("-created_at")


def session_get(*, user, key: UUID | str) -> AgentSession:
    """The user's session by key; another user's session is as unknown as a missing one."""
    try:
        return AgentSession.objects.get(key=key, user=user)
    except (AgentSession.DoesNotExist, ValidationError, ValueError):
        raise SessionNotFound() from None


def session_turns(*, session: AgentSession) -> QuerySet[ChatTurn]:
    """The session's stored turns (paged by the caller, newest first by id)."""
    return ChatTurn.objects.filter(session=session).select_related("provisional_price_version")


@dataclass(frozen=True)
class TurnCost:
    usd: Decimal | None
    # "billed": the turn's relayed usage events; "provisional": its `done` usage, priced at once;
    # None: neither is there (yet).
    source: str | None
    price_versions: list[str]


def turn_costs(*, session: AgentSession, turns: list[ChatTurn]) -> dict[int, TurnCost]:
    """What each of the session's `turns` cost, by turn id: billed once its usage is in (the
    bridge numbers a turn as its usage records do), else provisional, else unknown."""
    keys = {turn.pk: usage_turn_key(turn.acp_session_id, turn.number) for turn in turns if turn.number}
    billed = turn_costs_billed(user_id=session.user_id, session_key=str(session.key), turn_keys=keys.values())
    costs = {}
    for turn in turns:
        found = billed.get(keys.get(turn.pk, ""))
        if found is not None:
            costs[turn.pk] = TurnCost(found.usd, "billed", sorted(found.price_versions))
        elif turn.provisional_cost_usd is not None:
            version = turn.provisional_price_version
            costs[turn.pk] = TurnCost(turn.provisional_cost_usd, "provisional", [version.label] if version else [])
        else:
            costs[turn.pk] = TurnCost(None, None, [])
    return costs


def session_with_switch_context(*, user, key: UUID | str, now: datetime) -> tuple[AgentSession, SwitchContext]:
    """The user's session and what a quote reads about it.

    Every quote starts here, so on PostgreSQL it is one statement, prepared once per connection,
    instead of four ORM queries, each of which costs more in Python than in the server.
    """
    if connection.vendor != "postgresql":
        session = session_get(user=user, key=key)
        return session, switch_context_load(session_pk=session.pk, session_key=str(session.key), now=now)
    key = session_key_or_not_found(key)
    sql, session_columns = session_context_sql(
        source=f"{AgentSession._meta.db_table} s", where="s.key = %s AND s.user_id = %s"
    )
    with prepared_cursor() as cursor:
        cursor.execute(sql, [*pg_params(now), key, user.pk])
        row = cursor.fetchone()
    if row is None:
        raise SessionNotFound()
    return session_and_context_from_row(row, session_columns)


def session_key_or_not_found(key: UUID | str) -> UUID:
    try:
        return key if isinstance(key, UUID) else UUID(str(key))
    except ValueError:
        raise SessionNotFound() from None


def session_and_context_from_row(row, session_columns: ModelColumns) -> tuple[AgentSession, SwitchContext]:
    return session_columns.build(row), switch_context_from_pg(row[session_columns.span.stop :])


@cache
def session_context_sql(*, source: str, where: str = "", prefix: str = "") -> tuple[str, ModelColumns]:
    """SELECT a session (from `source`, which names it `s`) with its switch context, on
    PostgreSQL. Parameters: those of `prefix` and `source`, then pg_params(now), then `where`'s."""
    session = ModelColumns(AgentSession, "s")
    # Built from the model's own metadata and constants; every value is a parameter.
    sql = f"{prefix}SELECT {session.sql}, {PG_COLUMNS} FROM {source}{PG_JOINS}"  # noqa: S608
    if where:
        sql += f" WHERE {where}"
    return sql, session
