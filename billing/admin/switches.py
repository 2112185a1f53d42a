"""The switch ledger: its list (taxes first), CSV export, reconciliations, and the per-user
switch-cost page."""

import csv

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from billing.usage.cache_health import user_cache_health

from ..models import Subscription, SwitchReconciliation, SwitchRecord
from . import selectors as admin_selectors
from .base import ReadOnlyAdmin, UserIdFilter, money_column, user_costs_link


class SwitchUserFilter(UserIdFilter):
    user_path = "switch__user"


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
    # What a reviewer compares comes first (the taxes); the rest is folded into few, narrow
    # columns so that the list fits a 1280 px screen next to the filters.
    list_display = ["when", "quoted_tax", "actual_tax", "user_link", "switch_and_outcome"]
    list_display_links = ["when"]
    list_select_related = ["user", "reconciliation"]
    list_filter = [UserIdFilter, ModelPairFilter, ("created_at", admin.DateFieldListFilter), "outcome", "confirmed"]
    search_fields = ["user__username", "from_model_id", "to_model_id", "error_code"]
    ordering = ["-pk"]
    actions = ["export_csv"]
    change_list_template = "admin/billing/switchrecord/change_list.html"
    raw_id_fields = ["user", "session", "quote"]

    quoted_tax = money_column("quoted_tax_usd", "quoted tax", ordering="quoted_tax_usd")
    actual_tax = money_column("reconciliation.actual_tax_usd", "actual tax")

    @admin.display(description="when (UTC)", ordering="created_at")
    def when(self, obj):
        return f"{obj.created_at:%Y-%m-%d %H:%M}"

    @admin.display(description="user", ordering="user__username")
    def user_link(self, obj):
        return user_costs_link(obj.user_id, obj.user.get_username())

    @admin.display(description="switch")
    def switch_and_outcome(self, obj):
        # Outcome, how it was allowed (a confirmed quote, or under the user's auto-confirm
        # threshold) and the error under the model pair: one narrow column instead of four.
        parts = [obj.get_outcome_display().lower(), "confirmed" if obj.confirmed else "auto"]
        if obj.error_code:
            parts.append(obj.error_code)
        return format_html("{} → {}<br>{}", obj.from_model_id, obj.to_model_id, ", ".join(parts))

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
        "created_at", "user", "switch_pair", "quoted", "actual_tax", "quote_error", "actual_input",
        "counterfactual_stay",
    ]  # fmt: skip
    list_select_related = ["switch__user"]
    list_filter = [SwitchUserFilter, ("created_at", admin.DateFieldListFilter)]
    search_fields = ["switch__user__username"]
    ordering = ["-pk"]
    raw_id_fields = ["switch", "usage_event"]

    @admin.display(description="user")
    def user(self, obj):
        return user_costs_link(obj.switch.user_id, obj.switch.user.get_username())

    @admin.display(description="switch")
    def switch_pair(self, obj):
        return f"{obj.switch.from_model_id} → {obj.switch.to_model_id}"

    quoted = money_column("switch.quoted_tax_usd", "quoted tax")
    actual_tax = money_column("actual_tax_usd", "actual tax", ordering="actual_tax_usd")
    quote_error = money_column("quote_error_usd", "quote error", ordering="quote_error_usd")
    actual_input = money_column("actual_input_usd", "actual input")
    counterfactual_stay = money_column("counterfactual_stay_usd", "had it stayed")
