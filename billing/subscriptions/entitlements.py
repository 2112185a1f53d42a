"""Which picker models a user may switch to.

The order of the checks is the order of the answers a user needs: an id nobody
knows (400), a paid model without a paid plan in good standing (402), a model
the plan does not include (403).
"""

from typing import Any

from django.conf import settings

from billing.models import Plan, Subscription
from mk0r.errors import ServiceError

# The picker's ids, as the agent understands them (DESIGN.md §4).
PICKER_MODELS: tuple[str, ...] = ("haiku", "sonnet", "sonnet[1m]", "opus", "opus[1m]", "fable", "default")

# 1M-context variants only on the plans that include them; `fable` (the top model) on every
# plan that includes `opus`.
PLAN_MODELS: dict[str, frozenset[str]] = {
    Plan.FREE: frozenset({"haiku"}),
    Plan.PRO: frozenset({"haiku", "sonnet", "opus", "fable", "default"}),
    Plan.MAX5: frozenset({"haiku", "sonnet", "sonnet[1m]", "opus", "fable", "default"}),
    Plan.MAX20: frozenset({"haiku", "sonnet", "sonnet[1m]", "opus", "opus[1m]", "fable", "default"}),
}


class UnknownModel(ServiceError):
    status_code = 400
    code = "unknown_model"


class SubscriptionRequired(ServiceError):
    status_code = 402
    code = "subscription_required"


class ModelNotInPlan(ServiceError):
    status_code = 403
    code = "model_not_in_plan"


def subscription_for(*, user) -> Subscription:
    """The user's subscription; users without one are on the free plan."""
    try:
        return user.subscription
    except Subscription.DoesNotExist:
        return Subscription(user=user, plan=Plan.FREE)


def models_allowed(*, subscription: Subscription) -> frozenset[str]:
    if not subscription.is_active:
        return frozenset({settings.FREE_MODEL})
    return PLAN_MODELS[subscription.plan] | {settings.FREE_MODEL}


def model_access_check(*, user, model_id: str) -> None:
    if model_id not in PICKER_MODELS:
        raise UnknownModel(
            f"Unknown model {model_id!r}.", extra={"modelId": model_id, "knownModels": list(PICKER_MODELS)}
        )
    if model_id == settings.FREE_MODEL:
        return
    subscription = subscription_for(user=user)
    if not subscription.is_paid:
        raise SubscriptionRequired(
            f"The {model_id!r} model needs an active paid subscription.",
            extra={"modelId": model_id, "plan": subscription.plan, "status": subscription.status},
        )
    allowed = models_allowed(subscription=subscription)
    if model_id not in allowed:
        raise ModelNotInPlan(
            f"The {subscription.get_plan_display()} plan does not include {model_id!r}.",
            extra={"modelId": model_id, "plan": subscription.plan, "allowedModels": sorted(allowed)},
        )


def available_models_annotate(*, user, models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The agent's models, each with whether the user's plan allows a switch to it and, when
    not, why: the code a switch to it would answer (subscription_required, model_not_in_plan,
    or unknown_model for an id this service does not offer), from model_access_check itself."""
    annotated = []
    for model in models:
        try:
            model_access_check(user=user, model_id=model.get("modelId", ""))
        except ServiceError as refusal:
            annotated.append({**model, "allowed": False, "lockedReason": refusal.code})
        else:
            annotated.append({**model, "allowed": True, "lockedReason": None})
    return annotated
