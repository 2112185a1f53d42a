from decimal import Decimal

from django.conf import settings
from django.db import models


class Plan(models.TextChoices):
    FREE = "free", "Free"
    PRO = "pro", "Pro"
    MAX5 = "max5", "Max 5x"
    MAX20 = "max20", "Max 20x"


class SubscriptionStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    TRIALING = "trialing", "Trialing"
    PAST_DUE = "past_due", "Past due"
    CANCELED = "canceled", "Canceled"


class BillingMode(models.TextChoices):
    # Pays Anthropic API dollars per token.
    METERED = "metered", "Metered (API dollars)"
    # Flat-rate Claude plan via OAuth: burns a weekly cap instead of dollars.
    OAUTH = "oauth", "Flat-rate (weekly cap)"


ACTIVE_STATUSES = frozenset({SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING})


class Subscription(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="subscription")
    plan = models.CharField(max_length=16, choices=Plan.choices, default=Plan.FREE)
    status = models.CharField(max_length=16, choices=SubscriptionStatus.choices, default=SubscriptionStatus.ACTIVE)
    billing_mode = models.CharField(max_length=16, choices=BillingMode.choices, default=BillingMode.METERED)
    current_period_end = models.DateTimeField(null=True, blank=True)
    # Switches whose quoted tax is at or below this go through without a confirmed quote.
    auto_confirm_usd = models.DecimalField(
        max_digits=12,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="Empty: the DEFAULT_AUTO_CONFIRM_USD setting.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["billing_mode", "status"])]

    def __str__(self) -> str:
        return f"{self.user} {self.plan} ({self.status}, {self.billing_mode})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def auto_confirm_threshold(self) -> Decimal:
        return self.auto_confirm_usd if self.auto_confirm_usd is not None else settings.DEFAULT_AUTO_CONFIRM_USD

    @property
    def is_paid(self) -> bool:
        """A paid plan in good standing: what non-free models require."""
        return self.plan != Plan.FREE and self.is_active
