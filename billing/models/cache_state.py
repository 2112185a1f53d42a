"""Persisted prompt-cache state per session (the ORM side of `billing.quotes.cache_tracker`).

Sessions are named by their key only: billing does not depend on the sessions app,
and the log importer tracks Claude Code session ids that have no AgentSession row.
"""

from django.db import models


class TtlPolicy(models.TextChoices):
    FIVE_MINUTES = "5m", "5 minutes"
    ONE_HOUR = "1h", "1 hour"


class SessionCacheState(models.Model):
    session_key = models.CharField(max_length=100, unique=True)
    ttl_policy = models.CharField(max_length=4, choices=TtlPolicy.choices, default=TtlPolicy.FIVE_MINUTES)
    current_model = models.CharField(max_length=100, blank=True)
    context_tokens = models.PositiveBigIntegerField(
        default=0, help_text="input + cache read + cache write + output of the last request"
    )
    last_request_at = models.DateTimeField(null=True, blank=True)
    # Where the last request ran (billing.quotes.cache_tracker.request_platform): each platform
    # keeps its own cache, and the next request is expected where the last one ran.
    platform = models.CharField(max_length=16, default="anthropic")
    # Models that ever held a cache entry here: tells "expired" (cold) from "never cached".
    seen_models = models.JSONField(default=list, blank=True)
    # The last turn as the client saw it end ({at, model, usage}), applied on top of the exact
    # state until that turn's relayed usage arrives (billing.quotes.cache_store.cache_state_turn_ended).
    provisional_turn = models.JSONField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"cache state of {self.session_key}"


class CacheEntry(models.Model):
    """One cached prefix of one model on one platform in one session."""

    state = models.ForeignKey(SessionCacheState, on_delete=models.CASCADE, related_name="entries")
    platform = models.CharField(max_length=16, default="anthropic")
    model = models.CharField(max_length=100)
    prefix_tokens = models.PositiveBigIntegerField()
    ttl = models.CharField(max_length=4, choices=TtlPolicy.choices)
    expires_at = models.DateTimeField()
    # The prompt's fixed start (the system prompt and tools): kept, expired too, for its length.
    fixed_start = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["state", "platform", "model", "prefix_tokens"], name="billing_cache_entry_unique"
            ),
        ]
        indexes = [models.Index(fields=["state", "model"])]
        verbose_name_plural = "cache entries"

    def __str__(self) -> str:
        return f"{self.model} ({self.platform}) {self.prefix_tokens} tokens until {self.expires_at:%H:%M:%S}"
