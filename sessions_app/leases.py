"""The session lease: held by the one request that talks to the agent about the session's
model (a switch or a resume) for the length of its bridge calls.

It takes the place of a row lock held in a transaction left open across the bridge call (up to
the bridge's timeouts, with a database connection idle in transaction and usage ingestion for
the session waiting behind it). Taking the lease and reading what a quote needs is one
statement; giving it back goes into the statement that writes the outcome. A lease whose holder
died expires on its own, after the longest its bridge calls could have taken.
"""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from uuid import UUID, uuid4

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Case, F, Q, Value, When

from billing.quotes.switch_context import SwitchContext, pg_params, switch_context_load
from mk0r.db import RowUpdate, insert_row, prepared_cursor, rows_write

from .bridge_client import call_budget_seconds
from .errors import SessionBusy, SessionNotFound, session_not_open
from .models import AgentSession, SessionStatus
from .selectors import session_and_context_from_row, session_context_sql, session_key_or_not_found

logger = logging.getLogger(__name__)

# Beyond the bridge calls themselves: the request's own work around them.
_MARGIN = timedelta(seconds=5)
_POLL_SECONDS = 0.02
# A lease taken over after it expired was never given back: its holder died during its bridge
# call (or lost its database), so what the agent did then is unknown and the stored model is in
# doubt until it is checked with the agent (model_truth.py). SET sees the row as it was.
_DOUBT_SQL = "model_unverified = (model_unverified OR lease_token IS NOT NULL)"
# Giving the lease back after the database went away: a fresh connection, a few times.
_GIVE_BACK_ATTEMPTS = 3
_GIVE_BACK_PAUSE_SECONDS = 0.2


@dataclass(frozen=True)
class Lease:
    session: AgentSession
    context: SwitchContext  # as read when the lease was taken
    token: UUID


def session_lease_take(*, user, key: UUID | str, now: datetime, bridge_calls: int = 1, wait: bool = True) -> Lease:
    """Lease the user's open session for `bridge_calls` calls to its agent, and read it with its
    switch context. SessionNotFound, SessionClosed, or SessionBusy while another request has it
    (after waiting SESSION_LEASE_WAIT_SECONDS for it, unless `wait` is false)."""
    key = session_key_or_not_found(key)
    token = uuid4()
    expires_at = now + bridge_calls * timedelta(seconds=call_budget_seconds()) + _MARGIN
    take = _take_pg if connection.vendor == "postgresql" else _take_orm
    give_up_at = time.monotonic() + settings.SESSION_LEASE_WAIT_SECONDS
    while (leased := take(user=user, key=key, now=now, token=token, expires_at=expires_at)) is None:
        error = _why_not_leased(user=user, key=key)
        # A double click: the other switch is done in milliseconds as a rule, so wait for it.
        if not isinstance(error, SessionBusy) or not wait or time.monotonic() >= give_up_at:
            raise error
        time.sleep(_POLL_SECONDS)
    session, context = leased
    return Lease(session, context, token)


def session_lease_end(lease: Lease, *, values: dict | None = None, inserts=(), updates=()) -> bool:
    """Give the lease back, setting `values` on the session and writing `inserts` and `updates`
    (mk0r.db.rows_write) with it, all or nothing. False, with nothing written, when the lease was
    lost: it expired and another request took the session."""
    released = {**(values or {}), "lease_token": None, "lease_expires_at": None}
    guard = RowUpdate(AgentSession, lease.session.pk, released, where={"lease_token": lease.token})
    if not rows_write(guard=guard, inserts=inserts, updates=updates):
        return False
    for name, value in released.items():
        setattr(lease.session, name, value)
    return True


def _take_pg(*, user, key: UUID, now: datetime, token: UUID, expires_at: datetime):
    sql, session_columns = _take_sql()
    params = [token, expires_at, key, user.pk, SessionStatus.READY.value, now, *pg_params(now)]
    with prepared_cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else session_and_context_from_row(row, session_columns)


@cache
def _take_sql():
    table = AgentSession._meta.db_table
    take = (
        f"WITH leased AS (UPDATE {table} SET lease_token = %s, lease_expires_at = %s,"  # noqa: S608
        f" {_DOUBT_SQL}"
        " WHERE key = %s AND user_id = %s AND status = %s AND (lease_token IS NULL OR lease_expires_at <= %s)"
        " RETURNING *) "
    )
    return session_context_sql(prefix=take, source="leased s")


def _take_orm(*, user, key: UUID, now: datetime, token: UUID, expires_at: datetime):
    free = Q(lease_token__isnull=True) | Q(lease_expires_at__lte=now)
    open_session = AgentSession.objects.filter(key=key, user=user, status=SessionStatus.READY)
    doubt = Case(When(lease_token__isnull=False, then=Value(True)), default=F("model_unverified"))
    if not open_session.filter(free).update(lease_token=token, lease_expires_at=expires_at, model_unverified=doubt):
        return None
    session = AgentSession.objects.get(key=key, user=user)
    return session, switch_context_load(session_pk=session.pk, session_key=str(session.key), now=now)


def _why_not_leased(*, user, key: UUID) -> Exception:
    status = AgentSession.objects.filter(key=key, user=user).values_list("status", flat=True).first()
    if status is None:
        return SessionNotFound()
    if status != SessionStatus.READY:
        return session_not_open(status)
    return SessionBusy(extra={"retryAfterSeconds": 1})


@contextmanager
def lease_given_back(lease: Lease) -> Iterator[None]:
    """Whatever happens in the block, the lease does not outlive it: not even when the database
    connection broke during the block (the server restarted, the connection was killed)."""
    try:
        yield
    finally:
        if lease.session.lease_token is not None:
            _give_back(lease)


def lease_give_back_unverified(lease: Lease) -> None:
    """Give the lease back after the database failed the outcome's write, flagging the session:
    what the agent did is not recorded, so its next request asks the agent."""
    _give_back(lease, values={"model_unverified": True})


def _give_back(lease: Lease, values: dict | None = None) -> None:
    for attempt in range(_GIVE_BACK_ATTEMPTS):
        try:
            session_lease_end(lease, values=values)
            return
        except DatabaseError:
            logger.warning("session %s: could not give the lease back (attempt %s)", lease.session.key, attempt + 1)
            if connection.in_atomic_block:
                break
            # A broken connection stays broken; the next query opens a new one.
            connection.close()
            time.sleep(_GIVE_BACK_PAUSE_SECONDS * (attempt + 1))
    # Not worth hiding the request's own error for: the lease expires on its own.
    logger.error("session %s: the lease is left to expire", lease.session.key)


def lease_end_or_busy(lease: Lease, *, values: dict | None = None, inserts=(), updates=()) -> None:
    """session_lease_end, or SessionBusy when the lease was lost (the bridge calls outlasted it and
    another request took the session over): the session is that request's to update now, but the
    ledger still gets what the agent did."""
    if session_lease_end(lease, values=values, inserts=inserts, updates=updates):
        return
    logger.error("session %s: lease lost during a bridge call", lease.session.key)
    lease.session.lease_token = None
    for row in inserts:
        insert_row(row)
    raise SessionBusy()
