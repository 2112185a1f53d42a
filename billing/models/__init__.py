"""Billing models, one module per concern; import them all here so Django sees them."""

from .cache_state import CacheEntry, SessionCacheState
from .catalog import ApiModel, ModelAlias, ModelFamily, PriceVersion
from .subscriptions import ACTIVE_STATUSES, BillingMode, Plan, Subscription, SubscriptionStatus
from .switches import Quote, SwitchOutcome, SwitchReconciliation, SwitchRecord
from .usage import MissCause, RateLimitEvent, UsageEvent

__all__ = [
    "ACTIVE_STATUSES",
    "ApiModel",
    "BillingMode",
    "CacheEntry",
    "MissCause",
    "ModelAlias",
    "ModelFamily",
    "Plan",
    "PriceVersion",
    "Quote",
    "RateLimitEvent",
    "SessionCacheState",
    "Subscription",
    "SubscriptionStatus",
    "SwitchOutcome",
    "SwitchReconciliation",
    "SwitchRecord",
    "UsageEvent",
]
