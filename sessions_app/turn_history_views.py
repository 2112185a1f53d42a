"""GET /api/chat/sessions/{sessionKey}/turns: the session's conversation, a page at a time."""

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from mk0r.fields import QueryCharField, QueryIntegerField
from mk0r.schema import error_responses

from . import selectors
from .models import ChatTurn
from .schema_bodies import SESSION_KEY

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


class TurnsPage(CursorPagination):
    """Newest first: the first page holds the latest turns, `next` leads to earlier ones. A cursor
    holds a position, not an offset, so turns stored meanwhile neither repeat nor go missing."""

    ordering = "-id"
    page_size = DEFAULT_PAGE_SIZE
    page_size_query_param = "pageSize"
    max_page_size = MAX_PAGE_SIZE
    # A cursor this endpoint never gave is a page that does not exist: DRF's 404 `not_found`.


class TurnOutput(serializers.Serializer):
    """One turn: what was asked, what the agent said, how the turn ended and what it cost."""

    id = serializers.IntegerField()
    turn = serializers.IntegerField(
        source="number",
        allow_null=True,
        help_text="The agent's number of the turn in its ACP session (`sessionId`), as its usage records carry it; "
        "null when the turn ended before the agent named it.",
    )
    sessionId = serializers.CharField(source="acp_session_id")
    modelId = serializers.CharField(source="model_id")
    prompt = serializers.CharField()
    text = serializers.CharField(help_text="The agent's message text, as streamed.")
    textTruncated = serializers.BooleanField(source="text_truncated", help_text="The text is cut at 64 KiB.")
    stopReason = serializers.CharField(
        source="stop_reason",
        help_text="The agent's (`end_turn`, `cancelled`, `max_tokens`, ...), or `error` (see `errorCode`), or "
        "`disconnected`: the client went away before the turn's end reached it.",
    )
    errorCode = serializers.SerializerMethodField()
    usage = serializers.JSONField(
        allow_null=True, help_text="The `done` event's usage: {inputTokens, outputTokens, cachedReadTokens, "
        "cachedWriteTokens}."
    )  # fmt: skip
    costUsd = serializers.DecimalField(
        source="cost.usd", max_digits=14, decimal_places=6, allow_null=True, help_text="Null while unknown."
    )
    costSource = serializers.ChoiceField(
        source="cost.source",
        choices=["billed", "provisional"],
        allow_null=True,
        help_text="`billed`: the sum of the turn's relayed usage events; `provisional`: its `done` usage priced at "
        "once, until the relayed usage is in; null: neither is there.",
    )
    priceVersions = serializers.ListField(
        source="cost.price_versions", child=serializers.CharField(), help_text="The prices it was costed on."
    )
    startedAt = serializers.DateTimeField(source="started_at")
    endedAt = serializers.DateTimeField(source="ended_at")

    @extend_schema_field({"type": "string", "nullable": True, "description": "Why the turn failed (`error`)."})
    def get_errorCode(self, turn: ChatTurn) -> str | None:
        return turn.error_code or None


class TurnsOutput(serializers.Serializer):
    turns = TurnOutput(many=True)
    next = serializers.URLField(allow_null=True, help_text="The page of earlier turns.")
    previous = serializers.URLField(allow_null=True, help_text="The page of later turns.")


TURN_EXAMPLE = {
    "id": 41,
    "turn": 3,
    "sessionId": "acp-5f3e2d1c",
    "modelId": "haiku",
    "prompt": "Add a done checkbox",
    "text": "Done: each todo now has a checkbox.",
    "textTruncated": False,
    "stopReason": "end_turn",
    "errorCode": None,
    "usage": {"inputTokens": 12, "outputTokens": 40, "cachedReadTokens": 9000, "cachedWriteTokens": 500},
    "costUsd": "0.001737",
    "costSource": "billed",
    "priceVersions": ["claude-haiku-4-5@2025-10-01"],
    "startedAt": "2026-11-22T10:01:00Z",
    "endedAt": "2026-11-22T10:01:04Z",
}


class SessionTurnsView(APIView):
    """The session's stored turns, newest page first (each page newest first), with what each
    cost. Another user's session is 404 `session_not_found`."""

    class Input(serializers.Serializer):
        pageSize = QueryIntegerField(min_value=1, max_value=MAX_PAGE_SIZE, default=DEFAULT_PAGE_SIZE)
        cursor = QueryCharField(required=False, max_length=200, help_text="From `next` or `previous`.")

    @extend_schema(
        operation_id="sessions_turns",
        summary="The session's conversation: its turns, newest first, with what each cost",
        tags=["chat"],
        parameters=[Input],
        responses={
            200: OpenApiResponse(
                TurnsOutput,
                examples=[
                    OpenApiExample(
                        "page",
                        value={
                            "turns": [TURN_EXAMPLE],
                            "next": f"https://mk0r.example/api/chat/sessions/{SESSION_KEY}/turns?cursor=cD00MQ%3D%3D",
                            "previous": None,
                        },
                        response_only=True,
                    )
                ],
            ),
            **error_responses({404: ("session_not_found", "not_found")}),
        },
    )
    def get(self, request, key):
        self.Input(data=request.query_params).is_valid(raise_exception=True)
        session = selectors.session_get(user=request.user, key=key)
        paginator = TurnsPage()
        turns = paginator.paginate_queryset(selectors.session_turns(session=session), request, view=self)
        costs = selectors.turn_costs(session=session, turns=turns)
        for turn in turns:
            turn.cost = costs[turn.pk]
        return Response(
            {
                "turns": TurnOutput(turns, many=True).data,
                "next": paginator.get_next_link(),
                "previous": paginator.get_previous_link(),
            }
        )
