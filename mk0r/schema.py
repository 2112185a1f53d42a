"""OpenAPI schema conventions for the whole API (drf-spectacular).

The views follow one pattern (an APIView per operation with nested `Input` / `Output`
serializers), so the schema class reads those directly instead of warning that an
APIView has no `serializer_class`. Every operation gets the error responses that any
view can give (401 when it needs a token, 400 `invalid_request` and 413 when it takes
a body, 400 when it takes query parameters, 404 when its path has a session key, 429
when it is rate limited); the errors particular to an endpoint are declared next to it
(see sessions_app/schema.py). An event stream is documented event by event, as OpenAPI
3.0 tools read one. Paths under /api/internal/ are for the sandboxes, not for clients,
and are left out of the public schema.
"""

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import build_basic_type, build_parameter_type
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse
from rest_framework import permissions, serializers

from .fields import ClosedSerializer, StrictCharField

INTERNAL_PREFIX = "/api/internal/"


class ErrorBody(serializers.Serializer):
    """Every error answer of the API."""

    code = serializers.CharField(help_text="Stable machine-readable error code, e.g. `session_not_found`.")
    message = serializers.CharField(help_text="A sentence for people.")
    extra = serializers.DictField(help_text="Details that depend on the code (may be empty).")


class ErrorWithQuote(ErrorBody):
    """`confirmation_required` and `quote_stale`: the quote to confirm comes along."""

    quote = serializers.DictField(
        required=False,
        help_text="With `confirmation_required` and `quote_stale`: the quote to confirm (as the quote endpoint gives).",
    )


# Messages as the API sends them, for the examples in the schema.
ERROR_MESSAGES: dict[str, str] = {
    "invalid_request": "sessionKey: This field is required.",
    "invalid_credentials": "Wrong username or password.",
    "not_authenticated": "Authentication credentials were not provided.",
    "authentication_failed": "Invalid token.",
    "unknown_model": "Unknown model 'gpt'.",
    "model_rejected": "The agent does not offer that model.",
    "subscription_required": "The 'sonnet' model needs an active paid subscription.",
    "model_not_in_plan": "The Pro plan does not include 'opus[1m]'.",
    "session_not_found": "No such session.",
    "not_found": "Nothing at this URL.",
    "sandbox_gone": "The session's sandbox has stopped; start a new session.",
    "throttled": "Request was throttled. Expected available in 12 seconds.",
    "no_weekly_cap": "Your plan bills API dollars and has no weekly cap.",
    "quote_not_found": "No such quote.",
    "agent_session_lost": "The agent lost this session; resume it to go on.",
    "session_closed": "The session is closed.",
    "confirmation_required": "The switch has a cost; confirm the quote to go ahead.",
    "quote_stale": "The session changed since the quote was made; confirm the new quote.",
    "quote_used": "The quote has already been used.",
    "quote_mismatch": "The quote was made for another switch.",
    "quote_expired": "The quote has expired; ask for a new one.",
    "payload_too_large": "The request body is over 65536 bytes.",
    "agent_unreachable": "The agent in the session's sandbox could not be reached.",
    "agent_error": "The agent failed to carry out the request.",
    "sandbox_unavailable": "No sandbox could be started for the session.",
    "agent_timeout": "The agent did not answer in time.",
    "switch_pending": "An earlier model switch is still waiting on the agent; try again shortly.",
    "switch_outcome_unknown": (
        "The switch reached the agent but could not be recorded; the session's model is checked with the agent "
        "on its next request."
    ),
}

ERROR_EXTRAS: dict[str, dict[str, Any]] = {
    "invalid_request": {"fields": {"sessionKey": ["This field is required."]}},
    "unknown_model": {
        "modelId": "gpt",
        "knownModels": ["haiku", "sonnet", "sonnet[1m]", "opus", "opus[1m]", "fable", "default"],
    },
    "model_rejected": {"retryable": False, "availableModels": [{"modelId": "haiku", "name": "Haiku"}]},
    "subscription_required": {"modelId": "sonnet", "plan": "free", "status": "active"},
    "model_not_in_plan": {
        "modelId": "opus[1m]",
        "plan": "pro",
        "allowedModels": ["default", "fable", "haiku", "opus", "sonnet"],
    },
    "session_closed": {"status": "closed"},
    "quote_used": {"quoteId": "7d2b3c1e-5f0a-4b8e-9c4d-2a1f6e8b9c01"},
    "quote_mismatch": {"quoteId": "7d2b3c1e-5f0a-4b8e-9c4d-2a1f6e8b9c01"},
    "quote_expired": {"quoteId": "7d2b3c1e-5f0a-4b8e-9c4d-2a1f6e8b9c01"},
    "agent_session_lost": {"retryable": False},
    "agent_unreachable": {"retryable": True},
    "agent_error": {"retryable": False},
    "agent_timeout": {"retryable": True},
    "switch_pending": {"retryAfterSeconds": 1, "pendingModelId": "opus"},
    "sandbox_unavailable": {"retryable": True, "reason": "The bridge did not become healthy in time."},
    "sandbox_gone": {"retryable": False},
    "throttled": {"retryAfterSeconds": 12},
    "no_weekly_cap": {"plan": "max20"},
}

# One server-sent event, as a client reads it off the stream: `data` is a JSON document.
SSE_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "description": "update, done or error."},
        "data": {"type": "string", "description": "The event's JSON body."},
    },
    "required": ["event", "data"],
}
SSE = "text/event-stream"

QUOTE_EXAMPLE: dict[str, Any] = {
    "id": "7d2b3c1e-5f0a-4b8e-9c4d-2a1f6e8b9c01",
    "fromModelId": "haiku",
    "toModelId": "sonnet",
    "ttl": "5m",
    "prefixTokens": {"from": 48210, "to": 48210, "toLow": 48210, "toHigh": 48210, "measured": None},
    "cacheState": {"from": "warm", "to": "none"},
    "nextTurn": {"stayUsd": "0.0054", "switchUsd": "0.1843"},
    "taxUsd": "0.1789",
    "breakdown": {"cacheRebuildUsd": "0.1644", "rateDeltaUsd": "0.0145"},
    "steadyStateDeltaUsdPerTurn": "0.0116",
    "breakEvenTurns": None,
    "ttftPenaltyMs": 2410,
    "capPercent": None,
    "warnings": [],
    "priceVersion": {"from": "claude-haiku-4-5@2025-10-01", "to": "claude-sonnet-4-6@2026-02-17"},
    "currency": "USD",
    "expiresAt": "2026-11-22T10:02:00Z",
}

WITH_QUOTE = frozenset({"confirmation_required", "quote_stale"})


def error_example(code: str, status: int) -> OpenApiExample:
    value: dict[str, Any] = {
        "code": code,
        "message": ERROR_MESSAGES.get(code, code),
        "extra": ERROR_EXTRAS.get(code, {}),
    }
    if code in WITH_QUOTE:
        value["quote"] = QUOTE_EXAMPLE
    return OpenApiExample(code, value=value, status_codes=[str(status)], response_only=True)


def error_response(status: int, *codes: str, description: str = "") -> OpenApiResponse:
    """One status of an endpoint, with an example per error code it can carry."""
    listed = ", ".join(f"`{c}`" for c in codes)
    body = ErrorWithQuote if WITH_QUOTE & set(codes) else ErrorBody
    return OpenApiResponse(
        body,
        description=f"{description} Error codes: {listed}.".strip(),
        examples=[error_example(code, status) for code in codes],
    )


def error_responses(spec: dict[int, tuple[str, ...]]) -> dict[int, OpenApiResponse]:
    return {status: error_response(status, *codes) for status, codes in spec.items()}


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's AutoSchema, taught this project's view conventions."""

    def _nested(self, name: str):
        candidate = getattr(self.view, name, None)
        return candidate if isinstance(candidate, type) and issubclass(candidate, serializers.BaseSerializer) else None

    def _has_serializer_hints(self) -> bool:
        return any(hasattr(self.view, a) for a in ("get_serializer", "get_serializer_class", "serializer_class"))

    def get_request_serializer(self):
        if (nested := self._nested("Input")) is not None:
            return nested
        return super().get_request_serializer() if self._has_serializer_hints() else None

    def get_response_serializers(self):
        if (nested := self._nested("Output")) is not None:
            return nested
        if self._has_serializer_hints():
            return super().get_response_serializers()
        # An undocumented APIView: a JSON object, until its author annotates it.
        return OpenApiTypes.OBJECT

    def _get_serializer_name(self, serializer, direction, bypass_extensions=False) -> str:
        # Nested serializers are all called Input / Output: name them after their view.
        cls = serializer if isinstance(serializer, type) else serializer.__class__
        owner, _, own = cls.__qualname__.rpartition(".")
        name = super()._get_serializer_name(serializer, direction, bypass_extensions)
        if owner and name == own:
            name = owner.removesuffix("View") + own
        return name

    def _map_serializer(self, serializer, direction, bypass_extensions=False):
        schema = super()._map_serializer(serializer, direction, bypass_extensions)
        if isinstance(serializer, ClosedSerializer) or (
            isinstance(serializer, type) and issubclass(serializer, ClosedSerializer)
        ):
            schema["additionalProperties"] = False  # it refuses fields it does not declare
        return schema

    def _resolve_path_parameters(self, variables):
        # Every `key` in this API is a session key (a UUID).
        keyed = [v for v in variables if v == "key"]
        rest = super()._resolve_path_parameters([v for v in variables if v != "key"])
        return [
            build_parameter_type(
                name=v,
                location=OpenApiParameter.PATH,
                schema=build_basic_type(OpenApiTypes.UUID),
                description="The session's `sessionKey`.",
            )
            for v in keyed
        ] + rest

    def _needs_auth(self) -> bool:
        perms = [p.__class__ for p in self.view.get_permissions()]
        return permissions.AllowAny not in perms

    def _throttled(self) -> bool:
        self.view.get_throttles()  # a view may choose its scope by method (session start)
        return bool(getattr(self.view, "throttle_scope", None))

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        common: dict[int, tuple[str, ...]] = {}
        if self._needs_auth():
            common[401] = ("not_authenticated", "authentication_failed")
        if self.method in ("POST", "PUT", "PATCH"):
            common[400] = ("invalid_request",)
            common[413] = ("payload_too_large",)
        elif self.get_override_parameters():  # query parameters, validated like a body
            common[400] = ("invalid_request",)
        if "{key}" in self.path:
            common[404] = ("session_not_found", "not_found")
        if self._throttled():
            common[429] = ("throttled",)
        for status, codes in common.items():
            if str(status) not in responses:
                responses[str(status)] = self._get_response_for_code(
                    error_response(status, *codes), str(status), direction=direction
                )
        for response in responses.values():
            if SSE in response.get("content", {}):
                response["content"][SSE]["schema"] = SSE_EVENT_SCHEMA
        return dict(sorted(responses.items()))


class StrictCharFieldExtension(OpenApiSerializerFieldExtension):
    """Text fields refuse NUL characters (PostgreSQL cannot store them): the schema says so."""

    target_class = StrictCharField
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        if schema.get("type") == "string" and "enum" not in schema:
            schema["pattern"] = "^[^\\u0000]*$"
        return schema


def exclude_internal(endpoints, **kwargs):
    """Preprocessing hook: the sandboxes' own endpoints are not part of the public API."""
    return [e for e in endpoints if not e[0].startswith(INTERNAL_PREFIX)]
