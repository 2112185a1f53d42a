"""Subscriptions and the cap model (an estimate: Anthropic publishes no absolute caps) with
its settings, reports and alerts. Cap units are API-equivalent dollars (CAP_WEEKLY_UNITS,
billing/caps/plan_caps.py): a cap, or what was used of it, shows as money."""

from django.contrib import admin

from ..models import CapAlert, CapPlan, CapReport, CapSettings, CapWeight, Subscription
from .base import EstimatedCountPaginator, InputFilter, ReadOnlyAdmin, UserIdFilter, money_column, user_costs_link


class WeekFilter(InputFilter):
    title = "ISO week (2026-W10)"
    parameter_name = "week"

    def queryset(self, request, queryset):
        value = (self.value() or "").strip()
        return queryset.filter(week=value) if value else queryset


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["user", "plan", "status", "billing_mode", "auto_confirm", "current_period_end", "costs"]
    list_filter = ["plan", "status", "billing_mode"]
    list_select_related = ["user"]
    search_fields = ["user__username", "user__email"]
    raw_id_fields = ["user"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    auto_confirm = money_column("auto_confirm_usd", "auto-confirm up to", ordering="auto_confirm_usd")

    @admin.display(description="switch costs")
    def costs(self, obj):
        return user_costs_link(obj.user_id)


class CapWeightInline(admin.TabularInline):
    model = CapWeight
    extra = 0
    fields = ["model_key", "input", "cache_write_5m", "cache_write_1h", "cache_read", "output", "notes"]


@admin.register(CapPlan)
class CapPlanAdmin(admin.ModelAdmin):
    list_display = ["plan", "weekly_cap", "label", "updated_at"]
    inlines = [CapWeightInline]
    fieldsets = [
        (
            "Weekly cap (an estimate: Anthropic publishes no absolute caps)",
            {"fields": ["plan", "weekly_units", "label", "notes"]},
        )
    ]

    weekly_cap = money_column("weekly_units", "weekly cap (API-eq. $)", ordering="weekly_units")


@admin.register(CapWeight)
class CapWeightAdmin(admin.ModelAdmin):
    list_display = ["model_key", "plan", "input", "cache_write_5m", "cache_write_1h", "cache_read", "output"]
    list_filter = ["plan"]
    list_select_related = ["plan"]
    search_fields = ["model_key"]


@admin.register(CapSettings)
class CapSettingsAdmin(admin.ModelAdmin):
    list_display = [
        "user", "reset_mode", "reset_weekday", "reset_time", "calibrated_cap", "calibrated_plan", "calibrated_at",
        "calibration_events", "webhook_url",
    ]  # fmt: skip
    list_filter = ["reset_mode", "calibrated_plan"]
    list_select_related = ["user"]
    search_fields = ["user__username"]
    raw_id_fields = ["user"]
    readonly_fields = ["calibrated_at", "calibration_events"]

    calibrated_cap = money_column("calibrated_units", "calibrated cap (API-eq. $)", ordering="calibrated_units")


@admin.register(CapReport)
class CapReportAdmin(ReadOnlyAdmin):
    list_display = [
        "week", "user", "plan", "used", "cap", "cap_source", "percent", "switches", "misses", "runs_out_at", "sent_at",
    ]  # fmt: skip
    list_select_related = ["user"]
    list_filter = [UserIdFilter, WeekFilter]
    search_fields = ["user__username"]
    ordering = ["-pk"]

    used = money_column("units", "used (API-eq. $)")
    cap = money_column("cap_units", "cap (API-eq. $)")
    switches = money_column("switch_units", "due to switches")
    misses = money_column("miss_units", "due to other misses")


@admin.register(CapAlert)
class CapAlertAdmin(ReadOnlyAdmin):
    list_display = ["week", "user", "threshold", "percent", "created_at", "sent_at", "channels"]
    list_select_related = ["user"]
    list_filter = [UserIdFilter, WeekFilter, "threshold"]
    ordering = ["-pk"]
