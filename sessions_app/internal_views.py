"""Endpoints the sandboxes call, authenticated by the bridge's signature, not by a user."""

import json

from django.db import transaction
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.usage import InvalidUsageRecord, usage_ingest, usage_records_parse
from mk0r.errors import ServiceError

from .model_truth import session_usage_models_observe, usage_records_with_api_models
from .models import AgentSession
from .relay_auth import RelayUnauthorized, relay_verify


class UnknownSession(ServiceError):
    status_code = 409
    code = "unknown_session"


class UsageIngestView(APIView):
    """POST /api/internal/usage: a batch of usage and rate-limit records from one sandbox's relay."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def post(self, request):
        body = request.body  # the raw bytes, exactly as signed
        sandbox_id = request.headers.get("X-Mk0r-Sandbox", "")
        sessions = list(AgentSession.objects.filter(sandbox_id=sandbox_id).exclude(sandbox_id="")) if sandbox_id else []
        if not sessions:
            # The same answer as a bad signature: which sandboxes exist is nobody's business.
            raise RelayUnauthorized("The request is not signed by a known sandbox.", code="bad_signature")
        relay_verify(headers=request.headers, body=body, key=sessions[0].bridge_token, sandbox_id=sandbox_id)
        try:
            payload = json.loads(body)
        except ValueError:
            raise ServiceError("The body is not JSON.", code="invalid_request") from None
        if not isinstance(payload, dict) or payload.get("sandboxId", sandbox_id) != sandbox_id:
            raise ServiceError("The body must be an object for the signing sandbox.", code="invalid_request")
        raw_records = payload.get("records")
        # Usage of an ACP session a resume replaced still counts for its agent session.
        by_acp_id = {acp_id: s for s in sessions for acp_id in [*s.earlier_acp_session_ids, s.acp_session_id] if acp_id}
        if not isinstance(raw_records, list):
            raise InvalidUsageRecord("records must be a list.", extra={"index": None})
        groups: dict[int, list] = {}
        for index, raw in enumerate(raw_records):
            session = by_acp_id.get(raw.get("sessionId")) if isinstance(raw, dict) else None
            if session is None:
                raise UnknownSession(
                    f"Record {index}: no session of this sandbox has that sessionId.", extra={"index": index}
                )
            groups.setdefault(session.pk, []).append(raw)
        # Validate everything before writing anything.
        by_pk = {s.pk: s for s in sessions}
        groups = {pk: usage_records_with_api_models(session=by_pk[pk], raw_records=raws) for pk, raws in groups.items()}
        parsed = {pk: usage_records_parse(raws, ttl=by_pk[pk].cache_ttl) for pk, raws in groups.items()}
        accepted = duplicates = 0
        with transaction.atomic():
            for pk, records in sorted(parsed.items()):
                # Batches of one session apply in turn, in every web replica.
                session = AgentSession.objects.select_for_update().get(pk=pk)
                result = usage_ingest(
                    session_key=str(session.key), session_pk=session.pk, user=session.user, records=records
                )
                accepted += result.accepted
                duplicates += result.duplicates
                # What the agent billed: the session's picker map, and its model when a turn disagrees.
                session_usage_models_observe(session=session, raw_records=groups[pk])
        return Response({"accepted": accepted, "duplicates": duplicates}, status=status.HTTP_202_ACCEPTED)
