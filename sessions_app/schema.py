"""OpenAPI documentation of the sessions and chat API: responses, examples and error codes.

Kept apart from views.py so that the views stay short; `document()` is called once from
urls.py. The conventions every operation shares (401, 400 `invalid_request`, 413) come
from mk0r.schema.AutoSchema.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers

from mk0r.schema import QUOTE_EXAMPLE, error_responses

from . import views

SESSION_KEY = "0b6f1c7e-3d2a-4f5b-8c9e-1a2b3c4d5e6f"
SESSION_EXAMPLE = {
    "sessionKey": SESSION_KEY,
    "sessionId": "acp-5f3e2d1c",
    "modelId": "haiku",
    "status": "ready",
    "cacheTtl": "5m",
    "createdAt": "2026-11-22T10:00:00Z",
    "closedAt": None,
    "modelMap": {"haiku": {"apiModel": "claude-haiku-5-5", "source": "usage", "at": "2026-11-22T10:01:12Z"}},
}
AVAILABLE_MODELS = [
    {"modelId": "haiku", "name": "Haiku", "description": "Fastest", "allowed": True, "lockedReason": None},
    {"modelId": "sonnet", "name": "Sonnet", "description": "Balanced", "allowed": True, "lockedReason": None},
    {
        "modelId": "opus[1m]",
        "name": "Opus 1M",
        "description": "",
        "allowed": False,
        "lockedReason": "model_not_in_plan",
    },
]


# --- Documentation-only serializers for bodies the views build by hand ---------


class CountedTokens(serializers.Serializer):
    to = serializers.IntegerField(help_text="The session's messages counted on the new model.")

    def get_fields(self):
        return {
            "from": serializers.IntegerField(help_text="The same messages on the current model."),
            **super().get_fields(),
        }


class PrefixTokens(serializers.Serializer):
    to = serializers.IntegerField(
        help_text="The prefix in the new model's tokens: the same when both count alike, else scaled by the "
        "measured ratio (`measured`, warning tokenizer_measured) or estimated (warning tokenizer_estimate)."
    )
    toLow = serializers.IntegerField()
    toHigh = serializers.IntegerField()
    measured = CountedTokens(
        allow_null=True,
        help_text="The conversation counted on both models by the Messages API (system prompt and tools "
        "excluded), when the switch crosses tokenizers and the bridge counted it in time; else null.",
    )

    def get_fields(self):
        return {
            "from": serializers.IntegerField(help_text="The prefix in the current model's tokens."),
            **super().get_fields(),
        }


class CacheStates(serializers.Serializer):
    to = serializers.CharField(help_text="warm, partial, cold, none or below_minimum.")

    def get_fields(self):
        return {
            "from": serializers.CharField(help_text="warm, partial, cold, none or below_minimum."),
            **super().get_fields(),
        }


class NextTurn(serializers.Serializer):
    stayUsd = serializers.DecimalField(max_digits=20, decimal_places=10, coerce_to_string=True)
    switchUsd = serializers.DecimalField(max_digits=20, decimal_places=10, coerce_to_string=True)


class TaxBreakdown(serializers.Serializer):
    cacheRebuildUsd = serializers.DecimalField(max_digits=20, decimal_places=10, coerce_to_string=True)
    rateDeltaUsd = serializers.DecimalField(max_digits=20, decimal_places=10, coerce_to_string=True)


class PriceVersions(serializers.Serializer):
    to = serializers.CharField()

    def get_fields(self):
        return {"from": serializers.CharField(), **super().get_fields()}


class Quote(serializers.Serializer):
    """What a switch costs on the next turn, against staying on the current model. Money is a decimal string."""

    id = serializers.UUIDField(allow_null=True, help_text="Confirm with it as `quoteId`; null when not stored.")
    fromModelId = serializers.CharField()
    toModelId = serializers.CharField()
    ttl = serializers.CharField(help_text="The session's cache lifetime, 5m or 1h.")
    prefixTokens = PrefixTokens()
    cacheState = CacheStates()
    nextTurn = NextTurn()
    taxUsd = serializers.DecimalField(
        max_digits=20, decimal_places=10, coerce_to_string=True, help_text="switchUsd - stayUsd: the one-time tax."
    )
    breakdown = TaxBreakdown()
    steadyStateDeltaUsdPerTurn = serializers.DecimalField(max_digits=20, decimal_places=10, coerce_to_string=True)
    breakEvenTurns = serializers.IntegerField(
        allow_null=True, help_text="Turns after which the switch has paid for itself; null if it never does."
    )
    ttftPenaltyMs = serializers.IntegerField(help_text="Estimated extra delay before the first token.")
    capPercent = serializers.DecimalField(
        max_digits=9,
        decimal_places=4,
        coerce_to_string=True,
        allow_null=True,
        help_text="Share of the weekly cap (flat-rate plans only, an estimate).",
    )
    warnings = serializers.ListField(
        child=serializers.CharField(),
        help_text="already_cold, below_minimum, flapping, switch_back_warm, first_turn_free, tokenizer_estimate, "
        "tokenizer_measured.",
    )
    priceVersion = PriceVersions()
    currency = serializers.CharField()
    expiresAt = serializers.DateTimeField(allow_null=True)


class QuoteOutput(serializers.Serializer):
    quote = Quote()


class AvailableModel(serializers.Serializer):
    modelId = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField(required=False)
    allowed = serializers.BooleanField(help_text="Whether the user's plan allows a switch to this model.")
    lockedReason = serializers.ChoiceField(
        choices=["subscription_required", "model_not_in_plan", "unknown_model"],
        allow_null=True,
        help_text="Why not: the error code a switch to it would answer (402, 403, 400); null when allowed.",
    )


class StartedSession(views.SessionOutput):
    availableModels = AvailableModel(many=True)

    class Meta(views.SessionOutput.Meta):
        fields = [*views.SessionOutput.Meta.fields, "availableModels"]


class ResumedSession(StartedSession):
    resumed = serializers.BooleanField(help_text="False when the agent still had the session: nothing changed.")
    reason = serializers.ChoiceField(
        choices=["session_alive", "session_lost", "forced"],
        help_text="session_alive: left as it was; session_lost: re-created; forced: replaced on request.",
    )

    class Meta(StartedSession.Meta):
        fields = [*StartedSession.Meta.fields, "resumed", "reason"]


class SessionList(serializers.Serializer):
    sessions = views.SessionOutput(many=True)


class TokenOutput(serializers.Serializer):
    token = serializers.CharField()
    username = serializers.CharField()


class SwitchOutput(serializers.Serializer):
    ok = serializers.BooleanField()
    sessionKey = serializers.UUIDField()
    sessionId = serializers.CharField(help_text="The ACP session id: the same before and after the switch.")
    modelId = serializers.CharField()
    previousModelId = serializers.CharField()
    quote = Quote(allow_null=True, help_text="The quote the switch went ahead under; null for a no-op.")


class SwitchRow(serializers.Serializer):
    id = serializers.IntegerField()
    fromModelId = serializers.CharField()
    toModelId = serializers.CharField()
    outcome = serializers.CharField(
        help_text="applied, failed, unknown (no answer came back; checked with the agent next) or reconciled."
    )
    quotedTaxUsd = serializers.DecimalField(max_digits=20, decimal_places=10, coerce_to_string=True)
    actualTaxUsd = serializers.DecimalField(
        max_digits=20,
        decimal_places=10,
        coerce_to_string=True,
        allow_null=True,
        help_text="What the switch really cost, once the next turn's usage has arrived; null until then.",
    )
    errorCode = serializers.CharField(allow_null=True)
    createdAt = serializers.DateTimeField()


class SwitchHistory(serializers.Serializer):
    switches = SwitchRow(many=True)


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
    '"content":{"type":"text","text":"Sure, "}}}\n\n'
    'event: done\ndata: {"stopReason":"end_turn","usage":{"inputTokens":12,"outputTokens":40,'
    '"cachedReadTokens":9000,"cachedWriteTokens":500,"totalTokens":9552}}\n\n'
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

    switches = getattr(views, "SessionSwitchesView", None)
    if switches is not None and not getattr(switches.get, "kwargs", {}).get("schema"):
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
        )(switches)

    tags = ["chat"]
    extend_schema_view(
        post=extend_schema(
            operation_id="chat_turn",
            summary="One chat turn, streamed as server-sent events",
            description=(
                "Answers `text/event-stream`: `update` events (`{sessionId, update}`, an ACP session/update as the "
                "agent sent it), then exactly one of `done` (`{stopReason, usage}`) or `error` (`{code, message}`, "
                "e.g. `agent_session_lost`, `agent_timeout`). Errors found before the turn starts are plain JSON "
                "error answers. `POST /api/chat/cancel` stops the turn (`done` with `stopReason` `cancelled`); a "
                "client that closes the stream has its turn cancelled too."
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
