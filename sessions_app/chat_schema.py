"""OpenAPI documentation of stopping a chat turn (POST /api/chat/cancel)."""

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers

from mk0r.schema import error_responses

from . import views
from .schema import SESSION_AGENT_ERRORS, SESSION_KEY


class CancelOutput(serializers.Serializer):
    ok = serializers.BooleanField()


def document_chat_cancel() -> None:
    extend_schema_view(
        post=extend_schema(
            operation_id="chat_cancel",
            summary="Stop the session's running turn",
            description=(
                "The turn's stream ends with `done` (`stopReason` `cancelled`), and the usage of what the agent did "
                "is recorded as for any turn. With no turn running (or a closed session) it is a no-op. A client "
                "that closes its stream has its turn cancelled the same way."
            ),
            tags=["chat"],
            request=views.ChatCancelView.Input,
            examples=[OpenApiExample("stop", value={"sessionKey": SESSION_KEY}, request_only=True)],
            responses={
                200: OpenApiResponse(
                    CancelOutput, examples=[OpenApiExample("ok", value={"ok": True}, response_only=True)]
                ),
                **error_responses({404: ("session_not_found",), **SESSION_AGENT_ERRORS}),
            },
        )
    )(views.ChatCancelView)
