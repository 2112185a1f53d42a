"""The agent is the truth about its session's model (DESIGN.md §6).

Two things a session learns from its agent, and keeps:

- which model runs: after a switch whose outcome is unknown (a timeout, a lost database, a
  lost lease) the session is flagged `model_unverified`, and the next quote, switch, turn or
  resume asks the bridge (`/session/state`) before it trusts the stored model; a turn billed on
  another picker id than the stored one corrects it too. Each correction is a `reconciled` row
  in the switch ledger.
- what each picker id means (`model_map`): what `session/new` offers (the model options'
  names and descriptions), and exactly, the API model of the usage records of a turn on that
  id. The quote and the ledger price picker ids through it; the catalog's dated alias table is
  only the fallback before the agent has said anything.
"""

import logging
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from billing.catalog.selectors import UnknownModel, model_resolve, session_api_models
from billing.models import SwitchRecord
from billing.quotes.services import switch_record_reconciled
from mk0r.db import RowUpdate, insert_row, rows_write
from mk0r.errors import ServiceError
from mk0r.timefmt import iso_z

from .bridge_client import BridgeClient, BridgeError
from .errors import SessionBusy
from .leases import Lease, lease_given_back, session_lease_end, session_lease_take
from .liveness import session_bridge_failure
from .models import AgentSession

logger = logging.getLogger(__name__)

SOURCE_OFFER = "offer"
SOURCE_USAGE = "usage"
# "Haiku 4.5", "Claude Sonnet 5.5", "opus-4-8", "Fable 5.1": a family and a version.
_FAMILIES = ("haiku", "sonnet", "opus", "fable")
_NAMED_MODEL = re.compile(r"\b(haiku|sonnet|opus|fable)[\s-]+(\d+)(?:[.\-](\d+))?\b", re.IGNORECASE)


class SwitchPending(ServiceError):
    status_code = 409
    code = "switch_pending"
    message = "An earlier model switch is still waiting on the agent; try again shortly."


# --- the picker map ------------------------------------------------------------------------


def model_map_from_offer(*, available_models: Iterable[Mapping[str, Any]], at: datetime) -> dict[str, dict]:
    """Picker id -> API model, as the agent's model options name it (description, then name).

    Only names the catalog knows are kept. An option that names a family without a version
    (Claude Code's "default", described as "Opus") means the one offered model of that family;
    one that names no model stays on the catalog's alias table."""
    found: dict[str, dict] = {}
    family_only: dict[str, str] = {}
    for option in available_models:
        picker_id = option.get("modelId") if isinstance(option, Mapping) else None
        if not isinstance(picker_id, str) or not picker_id:
            continue
        texts = [t for t in (option.get("description"), option.get("name")) if isinstance(t, str)]
        api_id = next(filter(None, (_api_model_named(t, at=at) for t in texts)), None)
        if api_id is not None:
            found[picker_id] = {"apiModel": api_id, "source": SOURCE_OFFER, "at": iso_z(at)}
        elif texts and texts[0].strip().lower() in _FAMILIES:
            family_only[picker_id] = texts[0].strip().lower()
    for picker_id, family in family_only.items():
        offered = {e["apiModel"] for e in found.values() if e["apiModel"].startswith(f"claude-{family}-")}
        if len(offered) == 1:
            found[picker_id] = {"apiModel": offered.pop(), "source": SOURCE_OFFER, "at": iso_z(at)}
    return found


def _api_model_named(text: str, *, at: datetime) -> str | None:
    match = _NAMED_MODEL.search(text)
    if match is None:
        return None
    family, major, minor = match[1].lower(), match[2], match[3]
    candidate = f"claude-{family}-{major}" + (f"-{minor}" if minor and minor != "0" else "")
    try:
        return model_resolve(model_id=candidate, at=at).api_id
    except UnknownModel:
        return None


def model_map_merge(current: Mapping[str, dict], learned: Mapping[str, dict]) -> dict[str, dict]:
    """`learned` over `current`, except that an offer never replaces what usage showed exactly."""
    merged = dict(current)
    for picker_id, entry in learned.items():
        known = merged.get(picker_id)
        if entry["source"] == SOURCE_OFFER and known and known.get("source") == SOURCE_USAGE:
            continue
        merged[picker_id] = entry
    return merged


# --- which model runs ---------------------------------------------------------------------


def model_in_doubt(session: AgentSession, *, now: datetime) -> bool:
    """Whether the stored model must be checked with the agent before it is trusted: flagged,
    or a lease expired without being given back (its holder died during a call to the agent;
    the next lease taken flags the session, leases.py)."""
    expired = session.lease_token is not None and session.lease_expires_at is not None
    return session.model_unverified or (expired and session.lease_expires_at <= now)


def session_model_verified(*, user, session: AgentSession, bridge: BridgeClient) -> AgentSession:
    """The session, its stored model checked with the agent first when it is in doubt.

    For quotes and turns: when another request holds the session (a switch in flight, which
    writes the outcome itself) or the agent cannot say, the stored model is used as it is."""
    if not model_in_doubt(session, now=timezone.now()):
        return session
    try:
        lease = session_lease_take(user=user, key=session.key, now=timezone.now(), wait=False)
    except SessionBusy:
        return session
    with lease_given_back(lease):
        if not lease.session.model_unverified:
            return lease.session
        try:
            values, inserts = _reconciled(user=user, lease=lease, bridge=bridge, now=timezone.now())
        except (BridgeError, SwitchPending) as exc:
            logger.warning("session %s: could not check the model with the agent: %s", session.key, exc)
            return lease.session
        if not session_lease_end(lease, values=values, inserts=inserts):
            raise SessionBusy()
    return lease.session


def lease_model_reconcile(*, user, lease: Lease, bridge: BridgeClient, now: datetime) -> None:
    """Make the leased session's stored model the agent's, keeping the lease (for a switch)."""
    try:
        values, inserts = _reconciled(user=user, lease=lease, bridge=bridge, now=now)
    except BridgeError as exc:
        raise session_bridge_failure(session=lease.session, error=exc) from exc
    guard = RowUpdate(AgentSession, lease.session.pk, values, where={"lease_token": lease.token})
    if not rows_write(guard=guard, inserts=inserts):
        raise SessionBusy()
    for name, value in values.items():
        setattr(lease.session, name, value)


def _reconciled(*, user, lease: Lease, bridge: BridgeClient, now: datetime) -> tuple[dict, list[SwitchRecord]]:
    """What to write once the agent has said which model the session runs."""
    session = lease.session
    state = bridge.session_state(session_id=session.acp_session_id)
    if state.get("switchPending"):
        raise SwitchPending(extra={"retryAfterSeconds": 1, "pendingModelId": state["switchPending"]})
    values: dict[str, Any] = {"model_unverified": False, "updated_at": now}
    agent_model = state.get("modelId")
    if not _priceable(session, agent_model, at=now):
        # Nothing a quote could price: the stored model stays, and the agent's answer is logged.
        logger.warning("session %s: the agent reports model %r, which the catalog does not know", session.key,
                       agent_model)  # fmt: skip
        return values, []
    last = state.get("lastSwitch") or {}
    note = f"The agent reports {agent_model}; the session had {session.model_id}."
    if last:
        note += f" Its last switch, to {last.get('modelId')}, was {last.get('outcome')}" + (
            " (answered after the request gave up)." if last.get("late") else "."
        )
    if agent_model != session.model_id:
        logger.warning("session %s: stored model %s, the agent runs %s", session.key, session.model_id, agent_model)
    values["model_id"] = agent_model
    record = switch_record_reconciled(
        user=user, session=session, agent_model_id=agent_model, now=now, source="agent_state", note=note
    )
    return values, [record]


# --- what usage shows ---------------------------------------------------------------------


def usage_records_with_api_models(*, session: AgentSession, raw_records: list) -> list:
    """The records, each request naming the model billed: a record that carries only the picker
    id (an `acp_turn` record) gets the API model the session's map gives that id."""
    mapping = session_api_models(session.model_map)
    named = []
    for raw in raw_records:
        if isinstance(raw, dict) and raw.get("kind") == "request" and not raw.get("model"):
            api_id = mapping.get(raw.get("modelId")) if isinstance(raw.get("modelId"), str) else None
            if api_id is not None:
                raw = {**raw, "model": api_id}
        named.append(raw)
    return named


def session_usage_models_observe(*, session: AgentSession, raw_records: Iterable[Any]) -> None:
    """Learn from a batch of usage records what the agent billed for each picker id, and
    correct the stored model when a turn ran on another one. Call inside the ingest's
    transaction, holding the session's row lock."""
    seen: list[tuple[datetime, str, str]] = []
    api_ids: dict[str, str | None] = {}
    known_ids: dict[str, bool] = {}
    for raw in raw_records:
        if not isinstance(raw, Mapping) or raw.get("kind") != "request" or raw.get("isSidechain"):
            continue
        picker_id, model, at = raw.get("modelId"), raw.get("model"), raw.get("timestamp")
        at = parse_datetime(at) if isinstance(at, str) else None
        if not (isinstance(picker_id, str) and isinstance(model, str) and model and at is not None):
            continue
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        # Once per distinct id, whatever the batch's size. Only ids the session's map or the
        # catalog already knows are learned: the records come from the user's own sandbox.
        if model not in api_ids:
            api_ids[model] = _api_id(model, at=at)
        if picker_id not in known_ids:
            known_ids[picker_id] = _priceable(session, picker_id, at=at)
        if api_ids[model] is not None and known_ids[picker_id]:
            seen.append((at, picker_id, api_ids[model]))
    if not seen:
        return
    seen.sort()
    learned = {picker_id: {"apiModel": api, "source": SOURCE_USAGE, "at": iso_z(at)} for at, picker_id, api in seen}
    update: dict[str, Any] = {}
    merged = model_map_merge(session.model_map, learned)
    if merged != session.model_map:
        for picker_id, entry in learned.items():
            if (session.model_map.get(picker_id) or {}).get("apiModel") != entry["apiModel"]:
                logger.info("session %s: %s runs as %s", session.key, picker_id, entry["apiModel"])
        update["model_map"] = session.model_map = merged
    at, picker_id, api_id = seen[-1]
    if picker_id != session.model_id and _after_last_switch(session, at):
        logger.warning("session %s: a turn billed %s on %s, the session had %s", session.key, api_id, picker_id,
                       session.model_id)  # fmt: skip
        now = timezone.now()
        note = f"A turn at {iso_z(at)} was billed as {api_id} on {picker_id}; the session had {session.model_id}."
        insert_row(
            switch_record_reconciled(
                user=session.user, session=session, agent_model_id=picker_id, now=now, source="usage_model", note=note
            )
        )
        update.update(model_id=picker_id, updated_at=now)
        session.model_id = picker_id
    if update:
        AgentSession.objects.filter(pk=session.pk).update(**update)


def _api_id(model: str, *, at: datetime) -> str | None:
    try:
        return model_resolve(model_id=model, at=at).api_id
    except UnknownModel:
        return None


def _priceable(session: AgentSession, model_id: Any, *, at: datetime) -> bool:
    """Whether `model_id` can be the session's stored model: a model id the session's map or the
    catalog resolves (the sandbox, and so what it reports, is the user's to control)."""
    if not isinstance(model_id, str) or not 0 < len(model_id) <= 32:
        return False
    try:
        model_resolve(model_id=model_id, at=at, session_map=session_api_models(session.model_map))
    except UnknownModel:
        return False
    return True


def _after_last_switch(session: AgentSession, at: datetime) -> bool:
    """Whether a request at `at` ran after everything the ledger knows of the session's model,
    with no switch in flight: a record from before a switch legitimately names the old model."""
    if session.lease_token is not None and session.lease_expires_at and session.lease_expires_at > timezone.now():
        return False
    if session.model_unverified:
        return False  # the next request asks the agent itself
    last = (
        SwitchRecord.objects.filter(session_id=session.pk)
        .order_by("-created_at")
        .values_list("created_at", flat=True)[:1]
    )
    return not last or at > last[0]
