"""Writes for agent sessions: start, close, resume, and the model switch."""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from billing.entitlements import model_access_check, subscription_for
from billing.models import BillingMode, Quote, SwitchOutcome
from billing.quotes import quote_create, switch_confirmation, switch_quote_claim, switch_record_build
from mk0r.db import insert_row

from .bridge_client import BridgeClient, BridgeError, StreamEvent
from .errors import SessionBusy, SessionClosed, api_error_from_bridge, api_error_from_sandbox
from .leases import Lease, session_lease_end, session_lease_take
from .models import AgentSession, CacheTtl, SessionStatus
from .sandboxes import SandboxError, provider_for
from .selectors import session_get, session_with_switch_context

logger = logging.getLogger(__name__)

# How many replaced ACP sessions of one session still get their late usage recorded.
_EARLIER_ACP_IDS_KEPT = 20


def bridge_for(session: AgentSession) -> BridgeClient:
    headers = provider_for(session.provider).bridge_headers(access_token=session.sandbox_access_token)
    return BridgeClient(base_url=session.bridge_url, token=session.bridge_token, extra_headers=headers)


@dataclass(frozen=True)
class StartedSession:
    session: AgentSession
    available_models: list[dict[str, Any]]


def session_create(*, user) -> StartedSession:
    """Start a sandbox, open an ACP session in it and apply the default model."""
    subscription = subscription_for(user=user)
    session = AgentSession.objects.create(
        user=user,
        provider=settings.SANDBOX_PROVIDER,
        model_id=settings.DEFAULT_MODEL,
        # Claude Code writes 1-hour cache entries on a subscription, 5-minute ones on an API key.
        cache_ttl=CacheTtl.ONE_HOUR if subscription.billing_mode == BillingMode.OAUTH else CacheTtl.FIVE_MINUTES,
    )
    provider = provider_for(session.provider)
    try:
        sandbox = provider.start(session_key=str(session.key), user_id=user.pk)
    except SandboxError as exc:
        _mark_failed(session, exc.message)
        raise api_error_from_sandbox(exc) from exc
    session.sandbox_id = sandbox.sandbox_id
    session.bridge_url = sandbox.bridge_url
    session.bridge_token = sandbox.bridge_token
    session.sandbox_access_token = sandbox.access_token
    session.cwd = sandbox.cwd
    try:
        available = _open_agent_session(session)
    except BridgeError as exc:
        _mark_failed(session, exc.message)
        _stop_sandbox(session)
        raise api_error_from_bridge(exc) from exc
    session.status = SessionStatus.READY
    session.save()
    return StartedSession(session, available)


def _open_agent_session(session: AgentSession) -> list[dict[str, Any]]:
    """A new ACP session in the sandbox, carrying the session's stored model."""
    bridge = bridge_for(session)
    opened = bridge.new_session(cwd=session.cwd, model_id=session.model_id)
    if opened.model_id != session.model_id:
        # The agent may ignore the requested model on session/new; apply it explicitly.
        bridge.set_model(session_id=opened.session_id, model_id=session.model_id)
    session.acp_session_id = opened.session_id
    return opened.available_models


def session_resume(*, user, key) -> StartedSession:
    """Re-create the ACP session after the agent lost it, with the stored model applied again."""
    # Two bridge calls: session/new, then (maybe) set_model.
    lease = session_lease_take(user=user, key=key, now=timezone.now(), bridge_calls=2)
    with _lease_given_back(lease):
        session = lease.session
        replaced = session.acp_session_id
        try:
            available = _open_agent_session(session)
        except BridgeError as exc:
            raise api_error_from_bridge(exc) from exc
        # The relay may still send the replaced session's last usage; it is kept (up to a limit).
        earlier = [*session.earlier_acp_session_ids, replaced][-_EARLIER_ACP_IDS_KEPT:] if replaced else None
        values = {"acp_session_id": session.acp_session_id, "updated_at": timezone.now()}
        if earlier is not None:
            values["earlier_acp_session_ids"] = earlier
        _lease_end_or_busy(lease, values=values)
    return StartedSession(session, available)


def session_close(*, user, key) -> AgentSession:
    session = session_get(user=user, key=key)
    if session.status == SessionStatus.CLOSED:
        return session
    _stop_sandbox(session)
    session.status = SessionStatus.CLOSED
    session.closed_at = timezone.now()
    session.save(update_fields=["status", "closed_at", "updated_at"])
    return session


@dataclass(frozen=True)
class SwitchResult:
    session: AgentSession
    previous_model_id: str
    changed: bool
    quote: dict[str, Any] | None = None


def session_switch_quote(*, user, key, model_id: str) -> Quote:
    """A quote for switching the session to `model_id`, valid for QUOTE_TTL_SECONDS."""
    model_access_check(user=user, model_id=model_id)
    now = timezone.now()
    session, context = session_with_switch_context(user=user, key=key, now=now)
    _require_open(session)
    return quote_create(user=user, session=session, context=context, to_model_id=model_id, now=now)


def session_model_switch(*, user, key, model_id: str, quote_id=None) -> SwitchResult:
    """Forward a model switch to the agent once its cost is confirmed.

    The stored model changes only after the agent confirms, and every attempt that reaches the
    agent lands in the switch ledger, applied or failed. The session's lease keeps concurrent
    switches of one session (across web replicas) apart, and with them the claims of its quotes:
    of concurrent confirms of one quote, one wins.
    """
    model_access_check(user=user, model_id=model_id)
    now = timezone.now()
    lease = session_lease_take(user=user, key=key, now=now)
    with _lease_given_back(lease):
        session = lease.session
        previous = session.model_id
        if model_id == previous and quote_id is None:
            return SwitchResult(session, previous, changed=False)
        confirmation = switch_confirmation(
            user=user, session=session, context=lease.context, to_model_id=model_id, now=now, quote_id=quote_id
        )
        if confirmation.error is not None:
            raise confirmation.error
        _forward_switch(user=user, lease=lease, model_id=model_id, confirmation=confirmation)
    return SwitchResult(session, previous, changed=True, quote=confirmation.payload)


def _forward_switch(*, user, lease: Lease, model_id: str, confirmation) -> None:
    """Call the agent, then write the ledger row and give the lease back in one statement (with
    the new model and the quote's claim when the agent applied it)."""
    session = lease.session
    started = time.monotonic()
    try:
        bridge_for(session).set_model(session_id=session.acp_session_id, model_id=model_id)
    except BridgeError as exc:
        api_error = api_error_from_bridge(exc)
        logger.info("switch %s -> %s failed for session %s: %s", session.model_id, model_id, session.key, exc.kind)
        record = switch_record_build(
            user=user,
            session=session,
            confirmation=confirmation,
            outcome=SwitchOutcome.FAILED,
            latency_ms=_ms_since(started),
            error_code=api_error.code,
            error_message=exc.message,
        )
        _lease_end_or_busy(lease, inserts=[record])
        raise api_error from exc
    latency = _ms_since(started)
    record = switch_record_build(
        user=user, session=session, confirmation=confirmation, outcome=SwitchOutcome.APPLIED, latency_ms=latency
    )
    now = timezone.now()
    _lease_end_or_busy(
        lease,
        values={"model_id": model_id, "updated_at": now},
        inserts=[record],
        updates=switch_quote_claim(record=record, now=now),
    )


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


@contextmanager
def _lease_given_back(lease: Lease) -> Iterator[None]:
    """Whatever happens in the block, the lease does not outlive it."""
    try:
        yield
    finally:
        if lease.session.lease_token is not None:
            try:
                session_lease_end(lease)
            except DatabaseError:
                # Not worth hiding the request's own error for: the lease expires on its own.
                logger.exception("session %s: could not give the lease back", lease.session.key)


def _lease_end_or_busy(lease: Lease, *, values: dict | None = None, inserts=(), updates=()) -> None:
    if session_lease_end(lease, values=values, inserts=inserts, updates=updates):
        return
    # Only when the bridge calls outlasted the lease and another request took the session over:
    # the session is that request's to update now, but the ledger still gets what the agent did.
    logger.error("session %s: lease lost during a bridge call", lease.session.key)
    lease.session.lease_token = None
    for row in inserts:
        insert_row(row)
    raise SessionBusy()


def session_prompt(*, user, key, prompt: str) -> Iterator[StreamEvent]:
    """One chat turn, streamed. Failures before the turn starts raise; later ones end the stream
    with an `error` event, so a client always learns how its turn ended."""
    session = session_get(user=user, key=key)
    _require_open(session)
    events = bridge_for(session).prompt(session_id=session.acp_session_id, prompt=prompt)
    try:
        first = next(events)
    except StopIteration:
        first = None
    except BridgeError as exc:
        raise api_error_from_bridge(exc) from exc
    return _relay_turn(first, events)


def _relay_turn(first: StreamEvent | None, events: Iterator[StreamEvent]) -> Iterator[StreamEvent]:
    if first is None:
        yield StreamEvent("error", {"code": "agent_error", "message": "The agent ended the turn without an answer."})
        return
    yield first
    ended = first.event in ("done", "error")
    try:
        for event in events:
            yield event
            ended = event.event in ("done", "error")
    except BridgeError as exc:
        error = api_error_from_bridge(exc)
        yield StreamEvent("error", {"code": error.code, "message": error.message})
        return
    if not ended:
        yield StreamEvent("error", {"code": "agent_error", "message": "The turn's stream broke off."})


def _require_open(session: AgentSession) -> None:
    if session.status != SessionStatus.READY:
        raise SessionClosed(extra={"status": session.status})


def _mark_failed(session: AgentSession, reason: str) -> None:
    session.status = SessionStatus.FAILED
    session.last_error = reason[:500]
    session.save()


def _stop_sandbox(session: AgentSession) -> None:
    if not session.sandbox_id:
        return
    try:
        provider_for(session.provider).stop(sandbox_id=session.sandbox_id)
    except SandboxError as exc:
        # The session is closed for the user either way; the sandbox times out on its own.
        logger.warning("could not stop sandbox %s: %s", session.sandbox_id, exc.message)
