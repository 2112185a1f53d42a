"""Billing models, one module per concern; import them all here so Django sees them."""

from .subscriptions import ACTIVE_STATUSES, BillingMode, Plan, Subscription, SubscriptionStatus

__all__ = ["ACTIVE_STATUSES", "BillingMode", "Plan", "Subscription", "SubscriptionStatus"]
