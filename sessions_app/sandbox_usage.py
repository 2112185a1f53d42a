"""Usage a sandbox's relay posts (POST /api/internal/usage): verified, validated, and stored
for each agent session of the sandbox, all or nothing."""

from collections.abc import Mapping

from django.db import transaction

from billing.quotes.cache_store import cache_state_ttl
from billing.usage.ingestion import IngestResult, usage_batch_parse, usage_ingest, usage_payload_load
from mk0r.errors import ServiceError

from .model_truth import session_usage_models_observe, usage_records_with_api_models
from .models import AgentSession
from .relay_auth import RelayUnauthorized, relay_verify


def sandbox_usage_ingest(*, sandbox_id: str, headers: Mapping[str, str], body: bytes) -> IngestResult:
    """Store a batch of usage and rate-limit records signed by sandbox `sandbox_id` (`body`: the
    raw bytes, exactly as signed). Every record is validated before anything is written; the
    records of each agent session are stored under that session's row lock, sessions in order,
    so that batches of one session apply in turn in every web replica."""
    sessions = (
        list(AgentSession.objects.filter(sandbox_id=sandbox_id).exclude(sandbox_id=""))
        if sandbox_id and "\x00" not in sandbox_id
        else []
    )
    if not sessions:
        # The same answer as a bad signature: which sandboxes exist is nobody's business.
        raise RelayUnauthorized("The request is not signed by a known sandbox.", code="bad_signature")
    relay_verify(headers=headers, body=body, key=sessions[0].bridge_token, sandbox_id=sandbox_id)
    payload = usage_payload_load(body)
    if not isinstance(payload, dict) or payload.get("sandboxId", sandbox_id) != sandbox_id:
        raise ServiceError("The body must be an object for the signing sandbox.", code="invalid_request")
    # Usage of an ACP session a resume replaced still counts for its agent session.
    by_acp_id = {acp_id: s for s in sessions for acp_id in [*s.earlier_acp_session_ids, s.acp_session_id] if acp_id}
    raw_records = _with_api_models(payload.get("records"), by_acp_id=by_acp_id)
    records = usage_batch_parse(raw_records, ttl_by_session={acp_id: s.cache_ttl for acp_id, s in by_acp_id.items()})
    indexes_by_session: dict[int, list[int]] = {}
    for index, record in enumerate(records):
        indexes_by_session.setdefault(by_acp_id[record.acp_session_id].pk, []).append(index)
    accepted = duplicates = 0
    with transaction.atomic():
        for pk, indexes in sorted(indexes_by_session.items()):
            session = AgentSession.objects.select_for_update().get(pk=pk)
            result = usage_ingest(
                session_key=str(session.key),
                session_pk=session.pk,
                user=session.user,
                records=[records[i] for i in indexes],
                ttl=session.cache_ttl,
            )
            accepted += result.accepted
            duplicates += result.duplicates
            # What the agent billed: the session's picker map, and its model when a turn disagrees.
            session_usage_models_observe(session=session, raw_records=[raw_records[i] for i in indexes])
            _session_ttl_follow_cache(session)
    return IngestResult(accepted=accepted, duplicates=duplicates)


def _with_api_models(raw_records, *, by_acp_id: dict[str, AgentSession]):
    """The records, those naming only a picker id given the API model their session's map
    says (validated with the rest afterwards); anything but a list is left for the validation."""
    if not isinstance(raw_records, list):
        return raw_records
    positions: dict[str, list[int]] = {}
    for index, raw in enumerate(raw_records):
        session_id = raw.get("sessionId") if isinstance(raw, dict) else None
        if isinstance(session_id, str) and session_id in by_acp_id:
            positions.setdefault(session_id, []).append(index)
    named = list(raw_records)
    for session_id, indexes in positions.items():
        renamed = usage_records_with_api_models(
            session=by_acp_id[session_id], raw_records=[raw_records[i] for i in indexes]
        )
        for index, raw in zip(indexes, renamed, strict=True):
            named[index] = raw
    return named


def _session_ttl_follow_cache(session: AgentSession) -> None:
    """One TTL truth: once the agent's writes show the TTL it really uses, the session (its API,
    the picker, its quotes) says that one instead of the plan's default."""
    ttl = cache_state_ttl(session_key=str(session.key))
    if ttl and ttl != session.cache_ttl:
        session.cache_ttl = ttl
        session.save(update_fields=["cache_ttl", "updated_at"])
