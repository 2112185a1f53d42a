"""Admin: the price catalog (with history), cache state, the switch ledger and its per-user
cost review, usage and rate-limit events, reconciliations, subscriptions, and the cap model
(an estimate: Anthropic publishes no absolute caps) with its settings, reports and alerts.

Big tables (usage events, the ledger) stay fast at millions of rows: view-only, ordered by
primary key, related rows joined (no N+1), no full COUNT(*) (see EstimatedCountPaginator),
no date hierarchy, and no filter that asks the database for DISTINCT values of a big column.
"""

import csv
from functools import cached_property

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import connections
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from . import admin_selectors
from .cache_health import user_cache_health
from .models import (
    ApiModel,
    CacheEntry,
    CapAlert,
    CapPlan,
    CapReport,
    CapSettings,
    CapWeight,
    MissCause,
    ModelAlias,
    PriceVersion,
    RateLimitEvent,
    SessionCacheState,
    Subscription,
    SwitchReconciliation,
    SwitchRecord,
    UsageEvent,
)

# --- price catalog ---------------------------------------------------------------


@admin.register(ApiModel)
class ApiModelAdmin(SimpleHistoryAdmin):
    list_display = ["api_id", "display_name", "family", "canonical", "tokenizer_family", "context_window"]
    list_filter = ["family", "tokenizer_family"]
    search_fields = ["api_id", "display_name"]


@admin.register(ModelAlias)
class ModelAliasAdmin(SimpleHistoryAdmin):
    list_display = ["alias", "api_model", "effective_from", "long_context"]
    list_filter = ["alias"]


@admin.register(PriceVersion)
class PriceVersionAdmin(SimpleHistoryAdmin):
    list_display = [
        "label", "api_model", "effective_from", "input", "cache_write_5m", "cache_write_1h",
        "cache_read", "output", "min_cacheable_tokens", "long_context_threshold",
    ]  # fmt: skip
    list_filter = ["api_model__family"]
    search_fields = ["label", "api_model__api_id"]
    list_select_related = ["api_model"]

    # A price change is a new version with a later effective date; quotes and ledger rows
    # name the label they used, so the label of an existing version is not editable.
    def get_readonly_fields(self, request, obj=None):
        return ["label", "api_model", "effective_from"] if obj else []


class CacheEntryInline(admin.TabularInline):
    model = CacheEntry
    extra = 0
    readonly_fields = ["model", "prefix_tokens", "ttl", "expires_at"]
    can_delete = False


@admin.register(SessionCacheState)
class SessionCacheStateAdmin(admin.ModelAdmin):
    list_display = ["session_key", "current_model", "ttl_policy", "context_tokens", "last_request_at"]
    search_fields = ["session_key"]
    readonly_fields = ["session_key", "current_model", "context_tokens", "last_request_at", "seen_models"]
    inlines = [CacheEntryInline]


# --- big tables: shared pieces ---------------------------------------------------


class EstimatedCountPaginator(Paginator):
    """Never COUNT(*) a whole big table.

    Unfiltered on PostgreSQL: the planner's row estimate (pg_class.reltuples, kept by
    ANALYZE/autovacuum). Filtered, or without an estimate: an exact count of at most
    COUNT_LIMIT + 1 rows, so the last pages of a huge filter are out of reach (narrow it).
    """

    COUNT_LIMIT = 10_000

    @cached_property
    def count(self) -> int:
        qs = self.object_list
        if not qs.query.where:
            estimate = _estimated_rows(qs)
            if estimate is not None and estimate > self.COUNT_LIMIT:
                return estimate
        return qs.order_by()[: self.COUNT_LIMIT + 1].count()


def _estimated_rows(qs) -> int | None:
    connection = connections[qs.db]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [qs.model._meta.db_table])
        row = cursor.fetchone()
    return int(row[0]) if row and row[0] >= 0 else None


class ReadOnlyAdmin(admin.ModelAdmin):
    """Ledgers and events are written by the services only."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 100

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class InputFilter(admin.SimpleListFilter):
    """A text box instead of a list of values: a list would need DISTINCT over a big table."""

    template = "admin/billing/input_filter.html"

    def lookups(self, request, model_admin):
        return [("", "")]  # the box is the only choice; Django needs one to show the filter

    def choices(self, changelist):
        # The form keeps every other filter as hidden fields.
        yield {
            "value": self.value() or "",
            "others": [(k, v) for k, v in changelist.get_filters_params().items() if k != self.parameter_name],
        }


class UserIdFilter(InputFilter):
    """By user id or exact username."""

    title = "user (id or username)"
    parameter_name = "user"
    user_path = "user"

    def queryset(self, request, queryset):
        value = (self.value() or "").strip()
        if not value:
            return queryset
        if value.isdigit():
            return queryset.filter(**{f"{self.user_path}_id": int(value)})
        return queryset.filter(**{f"{self.user_path}__username": value})


class SwitchUserFilter(UserIdFilter):
    user_path = "switch__user"


class WeekFilter(InputFilter):
    title = "ISO week (2026-W10)"
    parameter_name = "week"

    def queryset(self, request, queryset):
        value = (self.value() or "").strip()
        return queryset.filter(week=value) if value else queryset


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


class ModelPairFilter(admin.SimpleListFilter):
    title = "model pair"
    parameter_name = "pair"

    def lookups(self, request, model_admin):
        pairs = SwitchRecord.objects.order_by().values_list("from_model_id", "to_model_id").distinct()[:100]
        return [(f"{a}>{b}", f"{a} → {b}") for a, b in sorted(pairs)]

    def queryset(self, request, queryset):
        if not self.value() or ">" not in self.value():
            return queryset
        frm, to = self.value().split(">", 1)
        return queryset.filter(from_model_id=frm, to_model_id=to)


def _user_costs_link(user_id: int, label: str = "switch costs"):
    return format_html('<a href="{}">{}</a>', reverse("admin:billing_user_switch_costs", args=[user_id]), label)


# --- switch ledger -----------------------------------------------------------------

# The per-user page shows cache health over the last four weeks, as the API computes it.
HEALTH_DAYS = 28
CSV_COLUMNS = [
    ("id", "id"),
    ("created_at", "created_at"),
    ("user", "user__username"),
    ("session_key", "session__key"),
    ("from_model_id", "from_model_id"),
    ("to_model_id", "to_model_id"),
    ("outcome", "outcome"),
    ("confirmed", "confirmed"),
    ("quoted_tax_usd", "quoted_tax_usd"),
    ("actual_tax_usd", "reconciliation__actual_tax_usd"),
    ("quote_error_usd", "reconciliation__quote_error_usd"),
    ("price_version_from", "price_version_from__label"),
    ("price_version_to", "price_version_to__label"),
    ("error_code", "error_code"),
    ("bridge_latency_ms", "bridge_latency_ms"),
]


class _Echo:
    def write(self, value):
        return value


def switch_records_csv(queryset, filename: str = "switches.csv") -> StreamingHttpResponse:
    """Stream rows straight from a server-side cursor: memory stays flat for any size."""
    writer = csv.writer(_Echo())
    rows = queryset.order_by("pk").values_list(*[field for _, field in CSV_COLUMNS]).iterator(chunk_size=2000)

    def lines():
        yield writer.writerow([name for name, _ in CSV_COLUMNS])
        for row in rows:
            yield writer.writerow(row)

    response = StreamingHttpResponse(lines(), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@admin.register(SwitchRecord)
class SwitchRecordAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at", "user_link", "from_model_id", "to_model_id", "outcome", "confirmed", "quoted_tax_usd",
        "actual_tax", "error_code",
    ]  # fmt: skip
    list_select_related = ["user", "reconciliation"]
    list_filter = [UserIdFilter, ModelPairFilter, ("created_at", admin.DateFieldListFilter), "outcome", "confirmed"]
    search_fields = ["user__username", "from_model_id", "to_model_id", "error_code"]
    ordering = ["-pk"]
    actions = ["export_csv"]
    change_list_template = "admin/billing/switchrecord/change_list.html"
    raw_id_fields = ["user", "session", "quote"]

    @admin.display(description="user", ordering="user__username")
    def user_link(self, obj):
        return _user_costs_link(obj.user_id, obj.user.get_username())

    @admin.display(description="actual tax")
    def actual_tax(self, obj):
        reconciliation = getattr(obj, "reconciliation", None)
        return reconciliation.actual_tax_usd if reconciliation else "—"

    @admin.action(description="Export selected switches as CSV", permissions=["view"])
    def export_csv(self, request, queryset):
        return switch_records_csv(queryset)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("export/", wrap(self.export_view), name="billing_switchrecord_export"),
            path("user/<int:user_id>/", wrap(self.user_costs_view), name="billing_user_switch_costs"),
            *super().get_urls(),
        ]

    def export_view(self, request):
        """The changelist as it is filtered and searched, as CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        changelist: ChangeList = self.get_changelist_instance(request)
        return switch_records_csv(changelist.get_queryset(request))

    def user_costs_view(self, request, user_id: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        from django.contrib.auth import get_user_model

        user = get_object_or_404(get_user_model(), pk=user_id)
        series = admin_selectors.user_weekly_switch_cost(user_id=user.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Switch costs of {user.get_username()}",
            "subject": user,
            "subscription": Subscription.objects.filter(user=user).first(),
            "totals": admin_selectors.user_switch_totals(user_id=user.pk),
            "accuracy": admin_selectors.user_quote_accuracy(user_id=user.pk),
            "health": user_cache_health(user=user, days=HEALTH_DAYS),
            "health_days": HEALTH_DAYS,
            "worst_sessions": admin_selectors.user_worst_sessions(user_id=user.pk),
            "chart": admin_selectors.weekly_chart(series),
            "ledger_url": reverse("admin:billing_switchrecord_changelist") + f"?user={user.pk}",
            "usage_url": reverse("admin:billing_usageevent_changelist") + f"?user={user.pk}",
            "reports_url": reverse("admin:billing_capreport_changelist") + f"?user={user.pk}",
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/billing/user_switch_costs.html", context)


@admin.register(SwitchReconciliation)
class SwitchReconciliationAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at", "user", "switch_pair", "quoted", "actual_tax_usd", "quote_error_usd", "actual_input_usd",
        "counterfactual_stay_usd",
    ]  # fmt: skip
    list_select_related = ["switch__user"]
    list_filter = [SwitchUserFilter, ("created_at", admin.DateFieldListFilter)]
    search_fields = ["switch__user__username"]
    ordering = ["-pk"]
    raw_id_fields = ["switch", "usage_event"]

    @admin.display(description="user")
    def user(self, obj):
        return _user_costs_link(obj.switch.user_id, obj.switch.user.get_username())

    @admin.display(description="switch")
    def switch_pair(self, obj):
        return f"{obj.switch.from_model_id} → {obj.switch.to_model_id}"

    @admin.display(description="quoted tax")
    def quoted(self, obj):
        return obj.switch.quoted_tax_usd


# --- usage ---------------------------------------------------------------------------


class SourceFilter(admin.SimpleListFilter):
    title = "source"
    parameter_name = "source"

    def lookups(self, request, model_admin):
        return [("transcript", "transcript"), ("acp_turn", "ACP turn"), ("import", "import")]

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
        "cache_write_1h_tokens", "cache_read_tokens", "output_tokens", "cost_usd", "miss_cause", "is_sidechain",
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


@admin.register(RateLimitEvent)
class RateLimitEventAdmin(ReadOnlyAdmin):
    list_display = ["occurred_at", "user", "session_key", "rate_limit_type", "utilization", "resets_at"]
    list_select_related = ["user"]
    list_filter = [UserIdFilter, RateLimitTypeFilter, ("occurred_at", admin.DateFieldListFilter)]
    search_fields = ["=session_key"]
    ordering = ["-pk"]


# --- subscriptions and the cap model (an estimate) ----------------------------------


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["user", "plan", "status", "billing_mode", "auto_confirm_usd", "current_period_end", "costs"]
    list_filter = ["plan", "status", "billing_mode"]
    list_select_related = ["user"]
    search_fields = ["user__username", "user__email"]
    raw_id_fields = ["user"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    @admin.display(description="switch costs")
    def costs(self, obj):
        return _user_costs_link(obj.user_id)


class CapWeightInline(admin.TabularInline):
    model = CapWeight
    extra = 0
    fields = ["model_key", "input", "cache_write_5m", "cache_write_1h", "cache_read", "output", "notes"]


@admin.register(CapPlan)
class CapPlanAdmin(admin.ModelAdmin):
    list_display = ["plan", "weekly_units", "label", "updated_at"]
    inlines = [CapWeightInline]
    fieldsets = [
        (
            "Weekly cap (an estimate: Anthropic publishes no absolute caps)",
            {"fields": ["plan", "weekly_units", "label", "notes"]},
        )
    ]


@admin.register(CapWeight)
class CapWeightAdmin(admin.ModelAdmin):
    list_display = ["model_key", "plan", "input", "cache_write_5m", "cache_write_1h", "cache_read", "output"]
    list_filter = ["plan"]
    list_select_related = ["plan"]
    search_fields = ["model_key"]


@admin.register(CapSettings)
class CapSettingsAdmin(admin.ModelAdmin):
    list_display = [
        "user", "reset_mode", "reset_weekday", "reset_time", "calibrated_units", "calibrated_plan", "calibrated_at",
        "calibration_events", "webhook_url",
    ]  # fmt: skip
    list_filter = ["reset_mode", "calibrated_plan"]
    list_select_related = ["user"]
    search_fields = ["user__username"]
    raw_id_fields = ["user"]
    readonly_fields = ["calibrated_at", "calibration_events"]


@admin.register(CapReport)
class CapReportAdmin(ReadOnlyAdmin):
    list_display = [
        "week", "user", "plan", "units", "cap_units", "cap_source", "percent", "switch_units", "miss_units",
        "runs_out_at", "sent_at",
    ]  # fmt: skip
    list_select_related = ["user"]
    list_filter = [UserIdFilter, WeekFilter]
    search_fields = ["user__username"]
    ordering = ["-pk"]


@admin.register(CapAlert)
class CapAlertAdmin(ReadOnlyAdmin):
    list_display = ["week", "user", "threshold", "percent", "created_at", "sent_at", "channels"]
    list_select_related = ["user"]
    list_filter = [UserIdFilter, WeekFilter, "threshold"]
    ordering = ["-pk"]
