from django.contrib import admin

from billing.admin.base import money_column

from .models import AgentSession, ChatTurn


@admin.register(AgentSession)
class AgentSessionAdmin(admin.ModelAdmin):
    """Read-only: sessions change through the API. The bridge and sandbox tokens are never shown."""

    list_display = ["key", "user", "model_id", "status", "provider", "sandbox_id", "cache_ttl", "created_at"]
    list_filter = ["status", "provider", "model_id", "cache_ttl"]
    list_select_related = ["user"]
    search_fields = ["key", "user__username", "sandbox_id", "acp_session_id"]
    show_full_result_count = False
    fields = [
        "key", "user", "status", "provider", "sandbox_id", "bridge_url", "acp_session_id", "model_id", "cwd",
        "cache_ttl", "last_error", "created_at", "updated_at", "closed_at",
    ]  # fmt: skip
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ChatTurn)
class ChatTurnAdmin(admin.ModelAdmin):
    """Read-only: the chat relay writes each turn as it ends. Its billed cost is its usage events'
    (billing's usage events, by the turn's key); the provisional one is its `done` usage priced."""

    list_display = ["started_at", "session", "number", "model_id", "stop_reason", "provisional_cost"]
    list_select_related = ["session__user"]
    # Exact matches only: a LIKE '%...%' over every turn would scan them all.
    search_fields = ["=session__key", "=acp_session_id"]
    show_full_result_count = False
    ordering = ["-pk"]
    fields = [
        "session", "acp_session_id", "number", "model_id", "prompt", "text", "text_truncated", "stop_reason",
        "error_code", "usage", "provisional_cost", "provisional_price_version", "started_at", "ended_at",
    ]  # fmt: skip
    readonly_fields = fields

    provisional_cost = money_column("provisional_cost_usd", "provisional cost")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
