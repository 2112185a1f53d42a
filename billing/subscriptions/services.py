"""Writes for subscriptions. (The quote, ledger and usage services live in their own modules.)"""

from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import transaction
from rest_framework.authtoken.models import Token

from billing.models import BillingMode, Plan, Subscription, SubscriptionStatus


@transaction.atomic
def subscription_set(
    *,
    username: str,
    plan: str,
    status: str = SubscriptionStatus.ACTIVE,
    billing_mode: str | None = None,
    period_end: datetime | None = None,
) -> tuple[Subscription, str]:
    """Create the user if missing, set their subscription, return it with their API token."""
    if plan not in Plan.values:
        raise ValueError(f"unknown plan {plan!r} (one of {', '.join(Plan.values)})")
    if status not in SubscriptionStatus.values:
        raise ValueError(f"unknown status {status!r} (one of {', '.join(SubscriptionStatus.values)})")
    if billing_mode is not None and billing_mode not in BillingMode.values:
        raise ValueError(f"unknown billing mode {billing_mode!r} (one of {', '.join(BillingMode.values)})")
    user, created = get_user_model().objects.get_or_create(username=username)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    subscription, _ = Subscription.objects.get_or_create(user=user)
    subscription.plan = plan
    subscription.status = status
    if billing_mode is not None:
        subscription.billing_mode = billing_mode
    if period_end is not None:
        subscription.current_period_end = period_end
    subscription.save()
    token, _ = Token.objects.get_or_create(user=user)
    return subscription, token.key
