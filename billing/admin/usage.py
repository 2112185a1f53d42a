"""Usage and rate-limit events: view-only lists that stay fast at millions of rows."""

from django.contrib import admin

from billing.usage.transcript_import import IMPORT_SOURCE
from billing.usage.validation import SOURCES

from ..models import ApiModel, MissCause, RateLimitEvent, UsageEvent
from .base import ReadOnlyAdmin, UserIdFilter, money_column


class RateLimitTypeFilter(admin.SimpleListFilter):
    title = "type"
    parameter_name = "type"

    def lookups(self, request, model_admin):
        return [("weekly", "weekly"), ("five_hour", "five hour")]

    def queryset(self, request, queryset):
        return queryset.filter(rate_limit_type=self.value()) if self.value() else queryset


class ApiModelFilter(admin.SimpleListFilter):
    """Models from the catalog (a small table), not DISTINCT over the events."""

    title = "model"
    parameter_name = "model"

    def lookups(self, request, model_admin):
        return [(m, m) for m in ApiModel.objects.filter(canonical__isnull=True).values_list("api_id", flat=True)]

    def queryset(self, request, queryset):
        return queryset.filter(model=self.value()) if self.value() else queryset


class SourceFilter(admin.SimpleListFilter):
    title = "source"
    parameter_name = "source"

    def lookups(self, request, model_admin):
        return [(source, source) for source in (*SOURCES, IMPORT_SOURCE)]

    def queryset(self, request, queryset):
        return queryset.filter(source=self.value()) if self.value() else queryset


class MissCauseFilter(admin.SimpleListFilter):
    title = "miss cause"
    parameter_name = "miss"

    def lookups(self, request, model_admin):
        return [("hit", "no miss (hit)"), *MissCause.choices]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        return queryset.filter(miss_cause="" if self.value() == "hit" else self.value())


@admin.register(UsageEvent)
class UsageEventAdmin(ReadOnlyAdmin):
    list_display = [
        "occurred_at", "user", "session_key", "model", "input_tokens", "cache_write_5m_tokens",
        "cache_write_1h_tokens", "cache_read_tokens", "output_tokens", "cost", "miss_cause", "is_sidechain",
    ]  # fmt: skip
    list_select_related = ["user"]
    list_filter = [
        UserIdFilter, ApiModelFilter, MissCauseFilter, SourceFilter, "is_sidechain",
        ("occurred_at", admin.DateFieldListFilter),
    ]  # fmt: skip
    # Exact matches only: a LIKE '%...%' over millions of rows would scan them all.
    search_fields = ["=session_key", "=request_id", "=record_id"]
    ordering = ["-pk"]
    raw_id_fields = ["user", "price_version"]

    cost = money_column("cost_usd", "cost")


@admin.register(RateLimitEvent)
class RateLimitEventAdmin(ReadOnlyAdmin):
    list_display = ["occurred_at", "user", "session_key", "rate_limit_type", "utilization", "resets_at"]
    list_select_related = ["user"]
    list_filter = [UserIdFilter, RateLimitTypeFilter, ("occurred_at", admin.DateFieldListFilter)]
    search_fields = ["=session_key"]
    ordering = ["-pk"]
