"""Endpoints the sandboxes call, authenticated by the bridge's signature, not by a user."""

from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from .sandbox_usage import sandbox_usage_ingest


class UsageIngestView(APIView):
    """POST /api/internal/usage: a batch of usage and rate-limit records from one sandbox's relay."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def post(self, request):
        result = sandbox_usage_ingest(
            sandbox_id=request.headers.get("X-Mk0r-Sandbox", ""),
            headers=request.headers,
            body=request.body,  # the raw bytes, exactly as signed
        )
        return Response({"accepted": result.accepted, "duplicates": result.duplicates}, status=status.HTTP_202_ACCEPTED)
