"""Examples and documentation-only serializers of the sessions and chat API: the bodies the
views build by hand, named as they appear in the OpenAPI schema. `schema.py` attaches them."""

from rest_framework import serializers

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


class CancelOutput(serializers.Serializer):
    ok = serializers.BooleanField()


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
