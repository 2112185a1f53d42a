"""What a chat turn cost: billed, from the usage events the sandbox relayed for it (summed, each
priced at ingestion from its price version), or, until those are in, provisional: the turn's
own `done` usage priced on the session's model, as its `acp_turn` usage record would be.

Pricing and reads only: the turns themselves are stored by sessions_app, which names a turn's
usage by `usage_turn_key` (its ACP session id and the bridge's number of the turn).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from billing.catalog.cost_engine import usage_cost
from billing.catalog.selectors import NoPriceVersion, UnknownModel, model_priced, session_api_models
from billing.models import PriceVersion, UsageEvent
from billing.money import ZERO, usd_quantize
from billing.usage.validation import MAX_COST_USD, InvalidUsageRecord, acp_usage_parse

# The counts of an ACP `PromptResponse.usage` (the `done` event's) that are billed.
ACP_USAGE_FIELDS = ("inputTokens", "outputTokens", "cachedReadTokens", "cachedWriteTokens")


@dataclass(frozen=True)
class ProvisionalUsage:
    counts: dict[str, int]  # ACP_USAGE_FIELDS
    usd: Decimal | None  # None when the model has no price
    price_version: PriceVersion | None


@dataclass
class BilledCost:
    usd: Decimal = ZERO
    # The labels of the price versions its usage events were priced under.
    price_versions: set[str] = field(default_factory=set)


def turn_usage_provisional(
    *, model_id: str, model_map: Mapping | None, ttl: str, usage: Any, at: datetime
) -> ProvisionalUsage | None:
    """The turn's `done` usage (the agent's sum over the turn's requests), checked as the relay's
    usage records are, and priced as one request of the session's model (`model_id`, a picker id
    read through the session's `model_map`) at `at`. None when there is no usage or it is not one
    the relay would accept."""
    try:
        parsed = acp_usage_parse(usage, ttl=ttl)
    except InvalidUsageRecord:
        return None
    counts = {name: usage.get(name) or 0 for name in ACP_USAGE_FIELDS}
    try:
        priced = model_priced(model_id=model_id, at=at, session_map=session_api_models(model_map))
    except (UnknownModel, NoPriceVersion):
        return ProvisionalUsage(counts, None, None)
    cost = usd_quantize(usage_cost(usage=parsed, prices=priced.prices).total)
    if cost > MAX_COST_USD:
        return ProvisionalUsage(counts, None, None)
    return ProvisionalUsage(counts, cost, priced.version)


def turn_costs_billed(*, user_id: int, session_key: str, turn_keys: Iterable[str]) -> dict[str, BilledCost]:
    """The billed cost of each of the session's turns whose usage is in, by turn key."""
    costs: dict[str, BilledCost] = {}
    rows = UsageEvent.objects.filter(
        user_id=user_id, session_key=session_key, turn_key__in=list(turn_keys)
    ).values_list("turn_key", "cost_usd", "price_version__label")
    for turn_key, cost, label in rows:
        billed = costs.setdefault(turn_key, BilledCost())
        billed.usd += cost
        billed.price_versions.add(label)
    return costs
