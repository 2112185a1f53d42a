"""Pieces the big-table admins share: the paginator that never counts a whole table, the
view-only base, text-box filters, money columns and the link to a user's switch costs."""

from functools import cached_property

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections
from django.urls import reverse
from django.utils.html import format_html

from billing.money import usd_display


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


def money_column(field: str, description: str, *, ordering: str | None = None):
    """A list column that shows the Decimal at `field` (a dotted path) as money."""

    @admin.display(description=description, ordering=ordering)
    def column(self, obj):
        value = obj
        for part in field.split("."):
            value = getattr(value, part, None)
            if value is None:
                break
        return usd_display(value)

    return column


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


def user_costs_link(user_id: int, label: str = "switch costs"):
    return format_html('<a href="{}">{}</a>', reverse("admin:billing_user_switch_costs", args=[user_id]), label)
