from django.contrib import admin

from .models import AgentSession


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
