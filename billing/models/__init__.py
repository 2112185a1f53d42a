"""Billing models, one module per concern; import them all here so Django sees them."""

from .cache_state import CacheEntry, SessionCacheState
from .catalog import ApiModel, ModelAlias, ModelFamily, PriceVersion
from .subscriptions import ACTIVE_STATUSES, BillingMode, Plan, Subscription, SubscriptionStatus
from .switches import Quote, SwitchOutcome, SwitchRecord

__all__ = [
    "ACTIVE_STATUSES",
    "ApiModel",
    "BillingMode",
    "CacheEntry",
    "ModelAlias",
    "ModelFamily",
    "Plan",
    "PriceVersion",
    "Quote",
    "SessionCacheState",
    "Subscription",
    "SubscriptionStatus",
    "SwitchOutcome",
    "SwitchRecord",
]
