"""Per-request usage, as Anthropic billed it, and the rate-limit events agents report.

Rows are idempotent per (session, record id, user): a retried relay batch or a re-imported
transcript changes nothing, and two users importing the same transcripts each get their own
rows (a sandbox session belongs to one user, so for relayed usage this is per session).
`session_key` names the session without a foreign key, because imported Claude Code
transcripts have sessions that never ran here.
"""

from django.conf import settings
from django.db import models

from billing.money import usd_display


class MissCause(models.TextChoices):
    FIRST_TURN = "first_turn", "First turn"
    MODEL_SWITCH = "model_switch", "Model switch"
    TTL_EXPIRED = "ttl_expired", "TTL expired"
    BELOW_MINIMUM = "below_minimum", "Below the minimum cacheable prefix"
    PREFIX_CHANGED = "prefix_changed", "Prefix changed"
    ROTATION = "rotation", "Workspace, key or region rotation"
    UNKNOWN = "unknown", "Unknown"


class UsageEvent(models.Model):
    session_key = models.CharField(max_length=100)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="usage_events"
    )
    record_id = models.CharField(max_length=200)
    source = models.CharField(max_length=16)  # transcript | acp_turn | import
    request_id = models.CharField(max_length=100, blank=True)
    model = models.CharField(max_length=100)  # canonical API id
    occurred_at = models.DateTimeField()
    input_tokens = models.PositiveBigIntegerField(default=0)
    cache_write_5m_tokens = models.PositiveBigIntegerField(default=0)
    cache_write_1h_tokens = models.PositiveBigIntegerField(default=0)
    cache_read_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=6)
    price_version = models.ForeignKey("billing.PriceVersion", on_delete=models.PROTECT, related_name="+")
    # The tracker's expected cache read before this request: the base of its prediction error.
    predicted_read_tokens = models.PositiveBigIntegerField(null=True, blank=True)
    miss_cause = models.CharField(max_length=16, choices=MissCause.choices, blank=True)
    is_sidechain = models.BooleanField(default=False)
    diagnostics = models.JSONField(null=True, blank=True)
    # "<ACP session id>:turn:<n>" for relayed records that name their turn: a turn's transcript
    # records replace its acp_turn record (billing/usage/ingestion.py).
    turn_key = models.CharField(max_length=240, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # (session, record) first: the relay's lookup of known ids reads this index's prefix.
            models.UniqueConstraint(fields=["session_key", "record_id", "user"], name="billing_usage_event_once"),
        ]
        indexes = [
            # Covers the weekly cap report's GROUP BY (PostgreSQL): an index-only scan per chunk of
            # users instead of a heap visit per event. Elsewhere it is a plain (user, time) index.
            models.Index(
                fields=["user", "occurred_at"],
                include=[
                    "session_key", "model", "miss_cause", "input_tokens", "cache_write_5m_tokens",
                    "cache_write_1h_tokens", "cache_read_tokens", "output_tokens",
                ],
                name="billing_usage_user_time_cover",
            ),
            models.Index(fields=["session_key", "occurred_at"]),
            # Partial: imported events name no turn and cost the import nothing here.
            models.Index(
                fields=["session_key", "turn_key"], condition=~models.Q(turn_key=""), name="billing_usage_turn"
            ),
        ]  # fmt: skip

    def __str__(self) -> str:
        return f"{self.model} {self.occurred_at:%Y-%m-%d %H:%M:%S} {usd_display(self.cost_usd, exact=True)}"

    @classmethod
    def check(cls, **kwargs):
        # The covering index's INCLUDE columns are a PostgreSQL speed-up for the cap reports. On
        # SQLite (the embedded default) Django builds the plain (user, time) index, which is what
        # that database needs, and would warn so (models.W040) on every start: silence that one
        # warning, for this model only.
        return [error for error in super().check(**kwargs) if error.id != "models.W040"]


class RateLimitEvent(models.Model):
    session_key = models.CharField(max_length=100)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="rate_limit_events"
    )
    record_id = models.CharField(max_length=200)
    rate_limit_type = models.CharField(max_length=32)  # weekly, five_hour, ...
    resets_at = models.DateTimeField(null=True, blank=True)
    utilization = models.DecimalField(max_digits=7, decimal_places=4, null=True, blank=True)
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session_key", "record_id"], name="billing_rate_limit_event_once"),
        ]
        indexes = [models.Index(fields=["user", "rate_limit_type", "occurred_at"])]

    def __str__(self) -> str:
        return f"{self.rate_limit_type} {self.utilization} at {self.occurred_at:%Y-%m-%d %H:%M}"
