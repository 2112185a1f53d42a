"""OpenAPI documentation of the sessions and chat API: responses, examples and error codes.

Kept apart from views.py so that the views stay short; `document()` is called once from
urls.py. The conventions every operation shares (401, 400 `invalid_request`, 413) come
from mk0r.schema.AutoSchema.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view

from mk0r.schema import QUOTE_EXAMPLE, error_responses

from . import views
from .schema_bodies import (
    AVAILABLE_MODELS,
    SESSION_EXAMPLE,
    SESSION_KEY,
    CancelOutput,
    QuoteOutput,
    ResumedSession,
    SessionList,
    StartedSession,
    SwitchHistory,
    SwitchOutput,
    TokenOutput,
)

# --- Error codes per endpoint ----------------------------------------------------

AGENT_ERRORS = {502: ("agent_unreachable", "agent_error"), 504: ("agent_timeout",)}
# Calls to the agent of an existing session: its sandbox may be gone.
SESSION_AGENT_ERRORS = {410: ("sandbox_gone",), **AGENT_ERRORS}
# POST /api/chat/model, as listed in README.md.
SWITCH_ERRORS = {
    400: ("invalid_request", "unknown_model", "model_rejected"),
    402: ("subscription_required",),
    403: ("model_not_in_plan",),
    404: ("session_not_found", "quote_not_found"),
    409: (
        "agent_session_lost",
        "session_closed",
        "confirmation_required",
        "quote_stale",
        "quote_used",
        "quote_mismatch",
        "session_busy",
        "switch_pending",
    ),
    **AGENT_ERRORS,
    410: ("quote_expired", "sandbox_gone"),
    413: ("payload_too_large",),
    503: ("sandbox_unavailable", "switch_outcome_unknown"),
}
QUOTE_ERRORS = {
    400: ("invalid_request", "unknown_model"),
    402: ("subscription_required",),
    403: ("model_not_in_plan",),
    404: ("session_not_found",),
    409: ("session_closed",),
    410: ("sandbox_gone",),
}
CHAT_ERRORS = {
    404: ("session_not_found",),
    409: ("agent_session_lost", "session_closed"),
    **SESSION_AGENT_ERRORS,
}

SSE_EXAMPLE = (
    'event: update\ndata: {"sessionId":"acp-5f3e2d1c","update":{"sessionUpdate":"agent_message_chunk",'
    '"content":{"type":"text","text":"Sure, "}},"turn":3}\n\n'
    'event: done\ndata: {"stopReason":"end_turn","usage":{"inputTokens":12,"outputTokens":40,'
    '"cachedReadTokens":9000,"cachedWriteTokens":500,"totalTokens":9552},"turn":3}\n\n'
)


def _ok(serializer, example: dict, description: str = "") -> OpenApiResponse:
    return OpenApiResponse(
        serializer, description=description, examples=[OpenApiExample("ok", value=example, response_only=True)]
    )


def document() -> None:
    """Attach the documentation to the views (idempotent)."""
    started = {**SESSION_EXAMPLE, "availableModels": AVAILABLE_MODELS}
    tags = ["auth"]
    extend_schema_view(
        post=extend_schema(
            operation_id="auth_token_create",
            summary="Exchange a username and password for an API token",
            tags=tags,
            auth=[],
            request=views.AuthTokenView.Input,
            responses={
                200: _ok(TokenOutput, {"token": "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b", "username": "demo-pro"}),
                **error_responses({400: ("invalid_request",), 401: ("invalid_credentials",)}),
            },
            examples=[OpenApiExample("sign in", value={"username": "demo-pro", "password": "demo"}, request_only=True)],
        )
    )(views.AuthTokenView)

    tags = ["sessions"]
    extend_schema_view(
        get=extend_schema(
            operation_id="sessions_list",
            summary="The user's sessions, newest first (at most 100)",
            tags=tags,
            responses={200: _ok(SessionList, {"sessions": [SESSION_EXAMPLE]})},
        ),
        post=extend_schema(
            operation_id="sessions_create",
            summary="Start a session: a sandbox and an ACP session on the default (free) model",
            description="The body is empty or `{}`: a session has nothing to choose yet.",
            tags=tags,
            request=views.SessionListCreateView.Input,
            responses={
                201: _ok(StartedSession, started),
                **error_responses(
                    {
                        400: ("invalid_request", "model_rejected"),
                        409: ("agent_session_lost",),
                        **AGENT_ERRORS,
                        503: ("sandbox_unavailable",),
                    }
                ),
            },
        ),
    )(views.SessionListCreateView)
    extend_schema_view(
        get=extend_schema(
            operation_id="sessions_retrieve",
            summary="One session, with the agent's models and which of them the user's plan allows",
            tags=tags,
            responses={
                200: _ok(StartedSession, started),
                **error_responses({404: ("session_not_found",)}),
            },
        ),
        delete=extend_schema(
            operation_id="sessions_close",
            summary="Close the session and stop its sandbox (idempotent)",
            tags=tags,
            responses={
                200: _ok(
                    views.SessionOutput, {**SESSION_EXAMPLE, "status": "closed", "closedAt": "2026-11-22T11:00:00Z"}
                ),
                **error_responses({404: ("session_not_found",)}),
            },
        ),
    )(views.SessionDetailView)
    extend_schema_view(
        post=extend_schema(
            operation_id="sessions_resume",
            summary="Re-create a lost ACP session with the stored model",
            description=(
                "A session the agent still has is left as it is (`resumed: false`, `reason: session_alive`): a "
                "new one would lose the agent's context and the warm prompt cache. `force: true` replaces it anyway."
            ),
            tags=tags,
            request=views.SessionResumeView.Input,
            responses={
                200: _ok(ResumedSession, {**started, "resumed": False, "reason": "session_alive"}),
                **error_responses(
                    {
                        400: ("model_rejected",),
                        404: ("session_not_found",),
                        409: ("session_closed", "agent_session_lost", "session_busy"),
                        **SESSION_AGENT_ERRORS,
                    }
                ),
            },
        )
    )(views.SessionResumeView)

    extend_schema_view(
        get=extend_schema(
            operation_id="sessions_switches",
            summary="The session's model switches, newest first, with quoted and actual tax",
            tags=tags,
            responses={
                200: _ok(
                    SwitchHistory,
                    {
                        "switches": [
                            {
                                "id": 1,
                                "fromModelId": "haiku",
                                "toModelId": "sonnet",
                                "outcome": "applied",
                                "quotedTaxUsd": "0.1789",
                                "actualTaxUsd": None,
                                "errorCode": None,
                                "createdAt": "2026-11-22T10:01:00Z",
                            }
                        ]
                    },
                ),
                **error_responses({404: ("session_not_found",)}),
            },
        )
    )(views.SessionSwitchesView)

    tags = ["chat"]
    extend_schema_view(
        post=extend_schema(
            operation_id="chat_turn",
            summary="One chat turn, streamed as server-sent events",
            description=(
                "Answers `text/event-stream`: `update` events (`{sessionId, update, turn}`, an ACP session/update "
                "as the agent sent it), then exactly one of `done` (`{stopReason, usage, turn}`) or `error` "
                "(`{code, message}`, e.g. `agent_session_lost`, `agent_timeout`). `turn` is the agent's number of "
                "the turn in its ACP session. Errors found before the turn starts are plain JSON error answers. "
                "`POST /api/chat/cancel` stops the turn (`done` with `stopReason` `cancelled`); a client that closes "
                "the stream has its turn cancelled too. The turn is stored as it ends, however it ends "
                "(`GET /api/chat/sessions/{sessionKey}/turns`)."
            ),
            tags=tags,
            request=views.ChatView.Input,
            examples=[
                OpenApiExample(
                    "prompt", value={"sessionKey": SESSION_KEY, "prompt": "Build a todo app"}, request_only=True
                )
            ],
            responses={
                (200, "text/event-stream"): OpenApiResponse(
                    OpenApiTypes.STR,
                    description="Events `update`*, then `done` or `error`.",
                    examples=[OpenApiExample("stream", value=SSE_EXAMPLE, response_only=True)],
                ),
                **error_responses(CHAT_ERRORS),
            },
        )
    )(views.ChatView)
    extend_schema_view(
        post=extend_schema(
            operation_id="chat_cancel",
            summary="Stop the session's running turn",
            description=(
                "The turn's stream ends with `done` (`stopReason` `cancelled`), and the usage of what the agent did "
                "is recorded as for any turn. With no turn running (or a closed session) it is a no-op. A client "
                "that closes its stream has its turn cancelled the same way."
            ),
            tags=tags,
            request=views.ChatCancelView.Input,
            examples=[OpenApiExample("stop", value={"sessionKey": SESSION_KEY}, request_only=True)],
            responses={
                200: _ok(CancelOutput, {"ok": True}),
                **error_responses({404: ("session_not_found",), **SESSION_AGENT_ERRORS}),
            },
        )
    )(views.ChatCancelView)

    tags = ["model"]
    extend_schema_view(
        post=extend_schema(
            operation_id="model_quote",
            summary="What switching the session's model would cost, before confirming",
            description="The quote is valid for a short time (`expiresAt`) and can be confirmed once.",
            tags=tags,
            request=views.SwitchInput,
            examples=[
                OpenApiExample("quote", value={"sessionKey": SESSION_KEY, "modelId": "sonnet"}, request_only=True)
            ],
            responses={200: _ok(QuoteOutput, {"quote": QUOTE_EXAMPLE}), **error_responses(QUOTE_ERRORS)},
        )
    )(views.ModelQuoteView)
    extend_schema_view(
        post=extend_schema(
            operation_id="model_switch",
            summary="Switch the session's model (same ACP session), confirming a quote",
            description=(
                "Without `quoteId` the switch goes ahead only when its tax is under the user's auto-confirm "
                "threshold; otherwise 409 `confirmation_required` carries a fresh `quote` to confirm. With `quoteId` "
                "a quote that no longer holds answers 409 `quote_stale` with the new `quote`. The stored model "
                "changes only after the agent confirms."
            ),
            tags=tags,
            request=views.ModelSwitchView.Input,
            examples=[
                OpenApiExample(
                    "confirm",
                    value={"sessionKey": SESSION_KEY, "modelId": "sonnet", "quoteId": QUOTE_EXAMPLE["id"]},
                    request_only=True,
                )
            ],
            responses={
                200: _ok(
                    SwitchOutput,
                    {
                        "ok": True,
                        "sessionKey": SESSION_KEY,
                        "sessionId": "acp-5f3e2d1c",
                        "modelId": "sonnet",
                        "previousModelId": "haiku",
                        "quote": QUOTE_EXAMPLE,
                    },
                ),
                **error_responses(SWITCH_ERRORS),
            },
        )
    )(views.ModelSwitchView)
