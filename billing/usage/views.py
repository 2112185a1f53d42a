"""The user's cache health and quote accuracy: GET /api/billing/cache-health, /api/billing/quote-accuracy."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.usage.cache_health import DEFAULT_DAYS, quote_accuracy, user_cache_health
from mk0r.fields import QueryIntegerField


class UserCacheHealthView(APIView):
    """Hit rate, miss causes and flapping over the last `days` days (default 7), overall and per session."""

    class Input(serializers.Serializer):
        days = QueryIntegerField(min_value=1, max_value=365, default=DEFAULT_DAYS)

    @extend_schema(
        summary="Prompt-cache hit rate, miss causes and flapping over the last `days` days",
        tags=["billing"],
        parameters=[Input],
    )
    def get(self, request):
        data = self.Input(data=request.query_params)
        data.is_valid(raise_exception=True)
        return Response(user_cache_health(user=request.user, days=data.validated_data["days"]))


class QuoteAccuracyView(APIView):
    """How far quotes were from the real cost of the user's reconciled switches (all time, or `days`)."""

    class Input(serializers.Serializer):
        days = QueryIntegerField(min_value=1, max_value=3650, required=False)
        worst = QueryIntegerField(min_value=0, max_value=50, default=5)

    @extend_schema(
        summary="How far quotes were from what the user's switches really cost",
        tags=["billing"],
        parameters=[Input],
    )
    def get(self, request):
        data = self.Input(data=request.query_params)
        data.is_valid(raise_exception=True)
        return Response(
            quote_accuracy(user=request.user, days=data.validated_data.get("days"), worst=data.validated_data["worst"])
        )
