"""Quotes and the switch ledger.

A quote is what the user was shown before confirming a switch; the ledger is
append-only and copies the quote and price versions each switch was made under,
so every figure stays traceable after prices change.
"""

import uuid

from django.conf import settings
from django.db import models

from billing.money import usd_display


class Quote(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="switch_quotes")
    # Indexed by Meta's (session, -created_at), which also serves lookups by session alone.
    session = models.ForeignKey(
        "sessions_app.AgentSession", on_delete=models.CASCADE, related_name="quotes", db_index=False
    )
    from_model_id = models.CharField(max_length=32)
    to_model_id = models.CharField(max_length=32)
    price_version_from = models.ForeignKey("billing.PriceVersion", on_delete=models.PROTECT, related_name="+")
    price_version_to = models.ForeignKey("billing.PriceVersion", on_delete=models.PROTECT, related_name="+")
    tax_usd = models.DecimalField(max_digits=14, decimal_places=6)
    # The quote exactly as the API returned it.
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    # Set once, by the one confirm that wins.
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["session", "-created_at"])]

    def __str__(self) -> str:
        return f"quote {self.id} {self.from_model_id}->{self.to_model_id} {usd_display(self.tax_usd, exact=True)}"


class SwitchOutcome(models.TextChoices):
    APPLIED = "applied", "Applied"
    FAILED = "failed", "Failed"
    # The switch reached the agent but its answer did not come back (a timeout, a database or
    # lease lost meanwhile): the session's model is checked with the agent before it is trusted.
    UNKNOWN = "unknown", "Unknown (checked with the agent next)"
    # Not a switch the user asked for: the model the agent reported, where the stored model
    # differed from it or was in doubt. from = what was stored, to = what the agent runs.
    RECONCILED = "reconciled", "Reconciled with the agent"


class SwitchRecord(models.Model):
    """One attempted model switch. Rows are written once and never changed."""

    # Both indexed by Meta's (session|user, -created_at), which also serve lookups by either alone:
    # every index is one more write on each switch.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="switch_records", db_index=False
    )
    session = models.ForeignKey(
        "sessions_app.AgentSession", on_delete=models.CASCADE, related_name="switches", db_index=False
    )
    quote = models.ForeignKey(Quote, null=True, blank=True, on_delete=models.SET_NULL, related_name="switches")
    from_model_id = models.CharField(max_length=32)
    to_model_id = models.CharField(max_length=32)
    price_version_from = models.ForeignKey("billing.PriceVersion", on_delete=models.PROTECT, related_name="+")
    price_version_to = models.ForeignKey("billing.PriceVersion", on_delete=models.PROTECT, related_name="+")
    quoted_tax_usd = models.DecimalField(max_digits=14, decimal_places=6)
    quote_payload = models.JSONField()
    # How the switch was allowed: a confirmed quote, or under the user's auto-confirm threshold.
    confirmed = models.BooleanField()
    outcome = models.CharField(max_length=16, choices=SwitchOutcome.choices)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    bridge_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        indexes = [
            models.Index(fields=["session", "-created_at"]),
            models.Index(fields=["user", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.from_model_id}->{self.to_model_id} {self.outcome} ({self.created_at:%Y-%m-%d %H:%M})"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("The switch ledger is append-only.")
        super().save(*args, **kwargs)


class SwitchReconciliation(models.Model):
    """What a switch really cost: its first request after the switch, against the
    counterfactual of staying (computed by the quote engine from the cache state
    just before that request). Kept beside the ledger row, which never changes."""

    switch = models.OneToOneField(SwitchRecord, on_delete=models.CASCADE, related_name="reconciliation")
    usage_event = models.OneToOneField("billing.UsageEvent", on_delete=models.CASCADE, related_name="+")
    actual_input_usd = models.DecimalField(max_digits=14, decimal_places=6)
    counterfactual_stay_usd = models.DecimalField(max_digits=14, decimal_places=6)
    actual_tax_usd = models.DecimalField(max_digits=14, decimal_places=6)
    # actual - quoted: positive when the quote undershot.
    quote_error_usd = models.DecimalField(max_digits=14, decimal_places=6)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return (
            f"switch {self.switch_id}: actual {usd_display(self.actual_tax_usd, exact=True)}"
            f" (error {usd_display(self.quote_error_usd, exact=True, signed=True)})"
        )
