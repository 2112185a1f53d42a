"""The model switch: its quote, its confirmation, the call to the agent and its ledger row.

The agent is the truth about the session's model: the stored model changes only once the
agent confirmed the switch, a switch whose outcome is unknown is recorded as `unknown` with the
session flagged, and a flagged session's model is checked with the agent (model_truth.py)
before a quote or a switch relies on it.
"""

import logging
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from billing.models import Quote, SwitchOutcome
from billing.quotes.services import (
    quote_create,
    quote_tokenizer_change,
    switch_confirmation,
    switch_quote_claim,
    switch_record_build,
)
from billing.subscriptions.entitlements import model_access_check
from mk0r.db import insert_row
from mk0r.errors import ServiceError

from .bridge_client import BridgeError, BridgeErrorKind
from .errors import SessionBusy
from .leases import (
    Lease,
    lease_end_or_busy,
    lease_give_back_unverified,
    lease_given_back,
    session_lease_end,
    session_lease_take,
)
from .liveness import session_bridge_failure
from .model_truth import lease_model_reconcile, model_in_doubt, session_model_verified
from .models import AgentSession
from .selectors import session_with_switch_context
from .services import bridge_for, require_open

logger = logging.getLogger(__name__)


class SwitchOutcomeUnknown(ServiceError):
    status_code = 503
    code = "switch_outcome_unknown"
    message = (
        "The switch reached the agent but could not be recorded; the session's model is checked with the agent "
        "on its next request."
    )


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
    require_open(session)
    if model_in_doubt(session, now=now):
        session = session_model_verified(user=user, session=session, bridge=bridge_for(session))
        if not session.model_unverified:
            # The stored model changed under the context read with it: read both again.
            session, context = session_with_switch_context(user=user, key=key, now=now)
    models = quote_tokenizer_change(session=session, context=context, to_model_id=model_id, now=now)
    measured = _conversation_counted(session, models) if models else None
    return quote_create(user=user, session=session, context=context, to_model_id=model_id, now=now, measured=measured)


def _conversation_counted(session: AgentSession, models: tuple[str, str]) -> tuple[int, int] | None:
    """The conversation counted on both models by the bridge, or None: a bridge without the
    route (404), a failure or a slow answer leaves the quote to its estimate, never waiting long."""
    try:
        counts = bridge_for(session).count_tokens(
            session_id=session.acp_session_id, model_ids=list(models), timeout=settings.BRIDGE_COUNT_TOKENS_TIMEOUT
        )
    except BridgeError as exc:
        logger.info("session %s: no token count (%s %s), estimating", session.key, exc.kind, exc.status or "")
        return None
    return counts[models[0]], counts[models[1]]


def session_model_switch(*, user, key, model_id: str, quote_id=None) -> SwitchResult:
    """Forward a model switch to the agent once its cost is confirmed.

    The stored model changes only after the agent confirms, and every attempt that reaches the
    agent lands in the switch ledger: applied, failed or unknown. The session's lease keeps
    concurrent switches of one session (across web replicas) apart, and with them the claims of
    its quotes: of concurrent confirms of one quote, one wins.
    """
    model_access_check(user=user, model_id=model_id)
    now = timezone.now()
    # Two bridge calls at most: the model check of a flagged session, then the switch.
    lease = session_lease_take(user=user, key=key, now=now, bridge_calls=2)
    with lease_given_back(lease):
        session = lease.session
        if session.model_unverified:
            # "Already on this model" holds only for a model known to be current.
            lease_model_reconcile(user=user, lease=lease, bridge=bridge_for(session), now=now)
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
        api_error = session_bridge_failure(session=session, error=exc)
        # A timeout leaves the request with the agent, which may still apply it.
        unknown = exc.kind == BridgeErrorKind.TIMEOUT
        logger.info("switch %s -> %s failed for session %s: %s", session.model_id, model_id, session.key, exc.kind)
        record = switch_record_build(
            user=user,
            session=session,
            confirmation=confirmation,
            outcome=SwitchOutcome.UNKNOWN if unknown else SwitchOutcome.FAILED,
            latency_ms=_ms_since(started),
            error_code=api_error.code,
            error_message=exc.message,
        )
        lease_end_or_busy(lease, values={"model_unverified": unknown}, inserts=[record])
        raise api_error from exc
    latency = _ms_since(started)
    record = switch_record_build(
        user=user, session=session, confirmation=confirmation, outcome=SwitchOutcome.APPLIED, latency_ms=latency
    )
    now = timezone.now()
    try:
        written = session_lease_end(
            lease,
            values={"model_id": model_id, "model_unverified": False, "updated_at": now},
            inserts=[record],
            updates=switch_quote_claim(record=record, now=now),
        )
    except DatabaseError as exc:
        # Should even this fail, the lease expires unreturned, which flags the session as well.
        logger.exception("session %s: the switch to %s could not be recorded", session.key, model_id)
        lease_give_back_unverified(lease)
        raise SwitchOutcomeUnknown() from exc
    if not written:
        # The call outlasted the lease and another request took the session over: which of the
        # two the agent applied last is not known here, so the session is checked next time.
        logger.error("session %s: lease lost during the switch to %s", session.key, model_id)
        lease.session.lease_token = None
        record.outcome = SwitchOutcome.UNKNOWN
        insert_row(record)
        AgentSession.objects.filter(pk=session.pk).update(model_unverified=True)
        raise SessionBusy()


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
