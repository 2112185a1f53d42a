"""The chat and model-switch API. Each view validates, calls one service, serializes."""

import functools

from asgiref.sync import sync_to_async
from django.contrib.auth import authenticate
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.quotes.selectors import switch_record_json, switch_records_for_session
from billing.subscriptions.entitlements import PICKER_MODELS, available_models_annotate
from mk0r.errors import ServiceError
from mk0r.fields import ClosedSerializer, StrictBooleanField, StrictCharField, StrictUUIDField
from mk0r.renderers import EventStreamRenderer
from mk0r.threadpool import in_thread_pool

from . import selectors, services, switching, turn_relay
from .models import AgentSession


@extend_schema_field({"type": "string", "enum": list(PICKER_MODELS), "description": "A picker model id."})
class PickerModelField(StrictCharField):
    """A picker model id. Validated against the catalog by the service (400 `unknown_model`
    with the known ids), so that the answer names them; the schema lists them."""


class SessionOutput(serializers.ModelSerializer):
    sessionKey = serializers.UUIDField(source="key")
    sessionId = serializers.CharField(source="acp_session_id")
    modelId = serializers.CharField(source="model_id")
    cacheTtl = serializers.CharField(source="cache_ttl")
    createdAt = serializers.DateTimeField(source="created_at")
    closedAt = serializers.DateTimeField(source="closed_at", allow_null=True)
    modelMap = serializers.JSONField(
        source="model_map",
        read_only=True,
        help_text="What the session's agent says each picker id means: {pickerId: {apiModel, source, at}}, "
        "source `offer` (its model options) or `usage` (the model billed for a turn on that id). Ids it has not "
        "named follow the catalog's alias table.",
    )

    class Meta:
        model = AgentSession
        # Only what the client needs: never the bridge URL or either token.
        fields = ["sessionKey", "sessionId", "modelId", "status", "cacheTtl", "createdAt", "closedAt", "modelMap"]


def _started_body(started: services.StartedSession, *, user) -> dict:
    return _with_models(SessionOutput(started.session).data, models=started.available_models, user=user)


def _with_models(body: dict, *, models: list[dict], user) -> dict:
    """The session with the agent's models, each marked with whether the user's plan allows it."""
    return {**body, "availableModels": available_models_annotate(user=user, models=models)}


class AuthTokenView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    class Input(serializers.Serializer):
        username = StrictCharField(min_length=1, max_length=150)
        password = StrictCharField(min_length=1, max_length=256, trim_whitespace=False)

    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(request, **data.validated_data)
        if user is None:
            # 401: the credentials are wrong, the request itself is well formed.
            raise ServiceError("Wrong username or password.", code="invalid_credentials", status_code=401)
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key, "username": user.get_username()})


class SessionListCreateView(APIView):
    def get_throttles(self):
        # Starting a session starts a VM: that is what gets a rate; listing does not.
        self.throttle_scope = "session_start" if self.request.method == "POST" else None
        return super().get_throttles()

    class Input(ClosedSerializer):
        """A session starts on the default model with the sandbox's own working directory, so a
        client sends nothing yet: no body, or `{}`."""

    def get(self, request):
        sessions = selectors.session_list(user=request.user)[:100]
        return Response({"sessions": SessionOutput(sessions, many=True).data})

    def post(self, request):
        self.Input(data=request.data).is_valid(raise_exception=True)
        started = services.session_create(user=request.user)
        return Response(_started_body(started, user=request.user), status=status.HTTP_201_CREATED)


class SessionDetailView(APIView):
    def get(self, request, key):
        session = selectors.session_get(user=request.user, key=key)
        return Response(_with_models(SessionOutput(session).data, models=session.available_models, user=request.user))

    def delete(self, request, key):
        return Response(SessionOutput(services.session_close(user=request.user, key=key)).data)


class SessionSwitchesView(APIView):
    """The session's switch ledger, newest first, with what each switch really cost once known."""

    def get(self, request, key):
        session = selectors.session_get(user=request.user, key=key)
        records = switch_records_for_session(session_pk=session.pk)[:200]
        return Response({"switches": [switch_record_json(r) for r in records]})


class SessionResumeView(APIView):
    class Input(ClosedSerializer):
        """Nothing, `{}`, or `{"force": true}`."""

        force = StrictBooleanField(
            required=False, default=False, help_text="Replace the ACP session even though the agent still has it."
        )

    def post(self, request, key):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        resumed = services.session_resume(user=request.user, key=key, force=data.validated_data["force"])
        body = _started_body(resumed, user=request.user)
        return Response({**body, "resumed": resumed.resumed, "reason": resumed.reason})


class SwitchInput(serializers.Serializer):
    sessionKey = StrictUUIDField()
    modelId = PickerModelField(max_length=64)


class ModelQuoteView(APIView):
    """What a switch would cost, before the user confirms it."""

    throttle_scope = "quote"

    def post(self, request):
        data = SwitchInput(data=request.data)
        data.is_valid(raise_exception=True)
        quote = switching.session_switch_quote(
            user=request.user, key=data.validated_data["sessionKey"], model_id=data.validated_data["modelId"]
        )
        return Response({"quote": quote.payload})


class ModelSwitchView(APIView):
    throttle_scope = "model_switch"

    class Input(SwitchInput):
        quoteId = StrictUUIDField(required=False)

    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        result = switching.session_model_switch(
            user=request.user,
            key=data.validated_data["sessionKey"],
            model_id=data.validated_data["modelId"],
            quote_id=data.validated_data.get("quoteId"),
        )
        return Response(
            {
                "ok": True,
                "sessionKey": str(result.session.key),
                "sessionId": result.session.acp_session_id,
                "modelId": result.session.model_id,
                "previousModelId": result.previous_model_id,
                "quote": result.quote,
            }
        )


class ChatView(APIView):
    """One chat turn, relayed from the agent as server-sent events (update*, then done or error).

    This DRF view is the turn's synchronous part (authentication, rate limits, validation, the
    session's lookup) and runs on the view thread pool; `chat` below relays the turn itself on
    the event loop."""

    renderer_classes = [JSONRenderer, EventStreamRenderer]

    class Input(serializers.Serializer):
        sessionKey = StrictUUIDField()
        prompt = StrictCharField(min_length=1, max_length=32 * 1024, trim_whitespace=False)

    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        target = services.session_turn_target(user=request.user, key=data.validated_data["sessionKey"])
        return _TurnAccepted(target, data.validated_data["prompt"])


class _TurnAccepted(Response):
    """What ChatView hands to `chat`: the turn to start. Never sent to a client."""

    def __init__(self, target: services.TurnTarget, prompt: str) -> None:
        super().__init__()
        self.target, self.prompt = target, prompt


_chat_checks = in_thread_pool(ChatView.as_view())


async def chat(request, *args, **kwargs):
    accepted = await _chat_checks(request, *args, **kwargs)
    if not isinstance(accepted, _TurnAccepted):
        return accepted  # refused before the turn: the error answer as rendered
    try:
        if isinstance(request, ASGIRequest):
            frames = await turn_relay.turn_start(target=accepted.target, prompt=accepted.prompt)
        else:
            # A WSGI request's thread waits for the turn (and makes its database writes).
            start = sync_to_async(turn_relay.turn_start_blocking, thread_sensitive=True)
            frames = await start(target=accepted.target, prompt=accepted.prompt)
    except ServiceError as exc:
        # Refused by the agent before the turn started: an error answer, negotiated as ChatView's.
        view = accepted.renderer_context["view"]
        response = view.finalize_response(view.request, view.handle_exception(exc))
        return response.render()
    response = StreamingHttpResponse(frames, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # let proxies pass each event on at once
    return response


functools.update_wrapper(chat, _chat_checks)


class ChatCancelView(APIView):
    """Stop the session's running turn; with none running, a no-op."""

    class Input(serializers.Serializer):
        sessionKey = StrictUUIDField()

    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        services.session_turn_cancel(user=request.user, key=data.validated_data["sessionKey"])
        return Response({"ok": True})
