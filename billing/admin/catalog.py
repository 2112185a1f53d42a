"""The price catalog (with history) and the cache state of sessions."""

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from ..models import ApiModel, CacheEntry, ModelAlias, PriceVersion, SessionCacheState
from .base import money_column


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
        "label", "api_model", "effective_from", "input_rate", "write_5m_rate", "write_1h_rate", "read_rate",
        "output_rate", "min_cacheable_tokens", "long_context_threshold",
    ]  # fmt: skip
    list_filter = ["api_model__family"]
    search_fields = ["label", "api_model__api_id"]
    list_select_related = ["api_model"]

    # Rates are per million tokens.
    input_rate = money_column("input", "input /MTok")
    write_5m_rate = money_column("cache_write_5m", "5m write /MTok")
    write_1h_rate = money_column("cache_write_1h", "1h write /MTok")
    read_rate = money_column("cache_read", "read /MTok")
    output_rate = money_column("output", "output /MTok")

    # A price change is a new version with a later effective date; quotes and ledger rows
    # name the label they used, so the label of an existing version is not editable.
    def get_readonly_fields(self, request, obj=None):
        return ["label", "api_model", "effective_from"] if obj else []


class CacheEntryInline(admin.TabularInline):
    model = CacheEntry
    extra = 0
    readonly_fields = ["platform", "model", "prefix_tokens", "ttl", "expires_at", "fixed_start"]
    can_delete = False


@admin.register(SessionCacheState)
class SessionCacheStateAdmin(admin.ModelAdmin):
    list_display = ["session_key", "current_model", "ttl_policy", "context_tokens", "last_request_at"]
    search_fields = ["session_key"]
    readonly_fields = ["session_key", "current_model", "platform", "context_tokens", "last_request_at", "seen_models"]
    inlines = [CacheEntryInline]
