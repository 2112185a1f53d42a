"""Billing models, one module per concern; import them all here so Django sees them."""

from .cache_state import CacheEntry, SessionCacheState
from .caps import CapAlert, CapPlan, CapReport, CapSettings, CapWeight, ResetMode
from .catalog import ApiModel, ModelAlias, ModelFamily, PriceVersion
from .subscriptions import ACTIVE_STATUSES, BillingMode, Plan, Subscription, SubscriptionStatus
from .switches import Quote, SwitchOutcome, SwitchReconciliation, SwitchRecord
from .usage import MissCause, RateLimitEvent, UsageEvent

__all__ = [
    "ACTIVE_STATUSES",
    "ApiModel",
    "BillingMode",
    "CacheEntry",
    "CapAlert",
    "CapPlan",
    "CapReport",
    "CapSettings",
    "CapWeight",
    "MissCause",
    "ModelAlias",
    "ModelFamily",
    "Plan",
    "PriceVersion",
    "Quote",
    "RateLimitEvent",
    "ResetMode",
    "SessionCacheState",
    "Subscription",
    "SubscriptionStatus",
    "SwitchOutcome",
    "SwitchReconciliation",
    "SwitchRecord",
    "UsageEvent",
]
