"""Writes for agent sessions: start, close, resume, and the chat turn and its record (the model
switch: switching.py)."""

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from billing.models import BillingMode
from billing.quotes.cache_store import cache_state_turn_ended
from billing.subscriptions.entitlements import subscription_for
from billing.usage.turn_costs import turn_usage_provisional
from billing.usage.validation import MAX_TURN

from .bridge_client import BridgeClient, BridgeError, BridgeErrorKind, StreamEvent
from .errors import api_error_from_bridge, api_error_from_sandbox, session_not_open
from .leases import lease_end_or_busy, lease_given_back, session_lease_take
from .liveness import session_bridge_failure
from .model_truth import lease_model_reconcile, model_map_from_offer, model_map_merge, session_model_verified
from .models import AgentSession, CacheTtl, ChatTurn, SessionStatus
from .sandboxes import SandboxError, provider_for
from .selectors import session_get
from .turn_text import TurnText

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
    try:
        sandbox = provider_for(session.provider).start(session_key=str(session.key), user_id=user.pk)
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
    """A new ACP session in the sandbox, carrying the session's stored model, and what the
    agent's model options say each picker id means."""
    bridge = bridge_for(session)
    opened = bridge.new_session(cwd=session.cwd, model_id=session.model_id)
    if opened.model_id != session.model_id:
        # The agent may ignore the requested model on session/new; apply it explicitly.
        bridge.set_model(session_id=opened.session_id, model_id=session.model_id)
    session.acp_session_id = opened.session_id
    # The new ACP session runs the stored model: the agent just confirmed it.
    session.model_unverified = False
    offered = model_map_from_offer(available_models=opened.available_models, at=timezone.now())
    session.model_map = model_map_merge(session.model_map, offered)
    session.available_models = opened.available_models
    return opened.available_models


@dataclass(frozen=True)
class ResumedSession(StartedSession):
    resumed: bool = True
    # session_lost: the agent had lost it; forced: replaced on request; session_alive: left as it was.
    reason: str = "session_lost"


def session_resume(*, user, key, force: bool = False) -> ResumedSession:
    """Re-create the ACP session after the agent lost it, with the stored model applied again.

    A session the agent still has is left alone (a new one would throw away the agent's context
    and the warm prompt cache), unless `force`."""
    # Up to three bridge calls: session/state, session/new, then (maybe) set_model.
    lease = session_lease_take(user=user, key=key, now=timezone.now(), bridge_calls=3)
    with lease_given_back(lease):
        session = lease.session
        replaced = session.acp_session_id
        try:
            alive = None if force or not replaced else _agent_session_state(session)
            if alive is not None:
                if session.model_unverified:  # left alone, but its model is the agent's word
                    lease_model_reconcile(user=user, lease=lease, bridge=bridge_for(session), now=timezone.now())
                return ResumedSession(session, list(alive.get("availableModels") or []), False, "session_alive")
            available = _open_agent_session(session)
        except BridgeError as exc:
            raise session_bridge_failure(session=session, error=exc) from exc
        # The relay may still send the replaced session's last usage; it is kept (up to a limit).
        earlier = [*session.earlier_acp_session_ids, replaced][-_EARLIER_ACP_IDS_KEPT:] if replaced else None
        values = {
            "acp_session_id": session.acp_session_id,
            "model_unverified": False,
            "model_map": session.model_map,
            "available_models": session.available_models,
            "updated_at": timezone.now(),
        }
        if earlier is not None:
            values["earlier_acp_session_ids"] = earlier
        lease_end_or_busy(lease, values=values)
    return ResumedSession(session, available, True, "forced" if force else "session_lost")


def _agent_session_state(session: AgentSession) -> dict[str, Any] | None:
    """What the agent says about the session while it has it; None once it lost it."""
    try:
        return bridge_for(session).session_state(session_id=session.acp_session_id)
    except BridgeError as exc:
        if exc.kind == BridgeErrorKind.SESSION_LOST:
            return None
        raise


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
class TurnTarget:
    """Where a chat turn goes: everything the asynchronous relay needs, read before it starts."""

    bridge: BridgeClient
    session: AgentSession

    @property
    def session_id(self) -> str:
        return self.session.acp_session_id


def session_turn_target(*, user, key) -> TurnTarget:
    """The open session's agent, for a chat turn (sessions_app.turn_relay relays it)."""
    session = session_get(user=user, key=key)
    require_open(session)
    bridge = bridge_for(session)
    # The turn runs on the agent's model: a stored model in doubt is checked first, so that what
    # the client shows and what quotes read afterwards is the model the turn ran on.
    session = session_model_verified(user=user, session=session, bridge=bridge)
    return TurnTarget(bridge=bridge, session=session)


@dataclass
class TurnWatch:
    """What the relay notes about a turn on its way to the client, to record its end."""

    session: AgentSession
    started: datetime  # when the prompt went to the agent
    prompt: str = ""
    context_tokens: int | None = None
    number: int | None = None  # the bridge's number of the turn, which every event names
    text: TurnText = field(default_factory=TurnText)
    recorded: bool = False

    def saw(self, event: StreamEvent) -> bool:
        """Note what the event tells about the turn; True for its end (`done` or `error`), which
        the relay then records (session_turn_ended) before passing it on."""
        number = event.data.get("turn")
        if isinstance(number, int) and not isinstance(number, bool) and 1 <= number <= MAX_TURN:
            self.number = number
        update = event.data.get("update") if event.event == "update" else None
        if isinstance(update, dict) and update.get("sessionUpdate") == "usage_update":
            used = update.get("used")
            if isinstance(used, int) and not isinstance(used, bool) and used >= 0:
                self.context_tokens = used
        elif isinstance(update, dict) and update.get("sessionUpdate") == "agent_message_chunk":
            content = update.get("content")
            if isinstance(content, dict) and content.get("type") == "text" and isinstance(content.get("text"), str):
                self.text.add(content["text"])
        return event.event in ("done", "error")


def session_turn_ended(*, watch: TurnWatch, end: StreamEvent | None) -> None:
    """The turn has ended (`end`: its `done` or `error`; None when its client went away before
    that). Called before the client learns it: the turn's cache state is recorded first, so that
    a quote the client asks for next sees the turn, and the turn is stored for the session's
    conversation (GET .../turns). A failure here must not cost the client its turn: each write is
    logged and left (the relayed usage brings the cache state up to date a moment later anyway)."""
    usage = end.data.get("usage") if end is not None and end.event == "done" else None
    if isinstance(usage, dict):
        try:
            cache_state_turn_ended(
                session=watch.session, usage=usage, at=watch.started, context_tokens=watch.context_tokens
            )
        except (DatabaseError, LookupError, ValueError):
            logger.exception("session %s: could not record the end of a turn", watch.session.key)
    try:
        _turn_store(watch=watch, end=end, usage=usage)
    except DatabaseError:
        logger.exception("session %s: could not store a turn", watch.session.key)


def _turn_store(*, watch: TurnWatch, end: StreamEvent | None, usage: Any) -> ChatTurn:
    session = watch.session
    error_code = ""
    if end is None:
        stop_reason = ChatTurn.DISCONNECTED
    elif end.event == "error":
        stop_reason, error_code = ChatTurn.ERROR, _storable(end.data.get("code"), 64) or "agent_error"
    else:
        stop_reason = _storable(end.data.get("stopReason"), 32) or "unknown"
    provisional = turn_usage_provisional(
        model_id=session.model_id, model_map=session.model_map, ttl=session.cache_ttl, usage=usage, at=watch.started
    )
    return ChatTurn.objects.create(
        session=session,
        acp_session_id=session.acp_session_id,
        number=watch.number,
        model_id=session.model_id,
        prompt=watch.prompt,
        text=watch.text.value(),  # before its `truncated`: a text that cannot be read back is cut
        text_truncated=watch.text.truncated,
        stop_reason=stop_reason,
        error_code=error_code,
        usage=provisional.counts if provisional else None,
        provisional_cost_usd=provisional.usd if provisional else None,
        provisional_price_version=provisional.price_version if provisional else None,
        started_at=watch.started,
        ended_at=timezone.now(),
    )


def _storable(value: Any, limit: int) -> str:
    """A string from the bridge as a text column takes it: no NUL, no unpaired surrogate."""
    if not isinstance(value, str):
        return ""
    return value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")[:limit]


def session_turn_cancel(*, user, key) -> None:
    """Cancel the session's running turn.

    A session with no turn running is a no-op: the agent ignores a cancel then, and a closed
    session or one the agent has lost runs nothing to stop. The turn's stream ends with `done`
    (stopReason `cancelled`) and its usage is recorded as for any turn."""
    session = session_get(user=user, key=key)
    if session.status != SessionStatus.READY or not session.acp_session_id:
        return
    try:
        bridge_for(session).cancel(session_id=session.acp_session_id)
    except BridgeError as exc:
        if exc.kind != BridgeErrorKind.SESSION_LOST:
            raise session_bridge_failure(session=session, error=exc) from exc


def require_open(session: AgentSession) -> None:
    if session.status != SessionStatus.READY:
        raise session_not_open(session.status)


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
