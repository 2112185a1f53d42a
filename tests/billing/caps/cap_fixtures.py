"""Rows for the cap report, admin and worker tests: users on plans, usage events, switches."""

import itertools
from datetime import UTC, datetime
from decimal import Decimal

from django.apps import apps

from billing.catalog.selectors import price_version_for
from billing.models import PriceVersion, SwitchOutcome, SwitchReconciliation, SwitchRecord, UsageEvent
from billing.subscriptions.services import subscription_set

# Monday 2026-03-02 00:00 UTC starts ISO week 2026-W10.
WEEK_START = datetime(2026, 3, 2, tzinfo=UTC)
WEEK = "2026-W10"
_ids = itertools.count(1)


def oauth_user(username: str, plan: str = "max5", *, email: str | None = None):
    subscription, _ = subscription_set(username=username, plan=plan, billing_mode="oauth")
    user = subscription.user
    user.email = email if email is not None else f"{username}@example.com"
    user.save(update_fields=["email"])
    return user


def version(api_model: str = "claude-opus-4-6") -> PriceVersion:
    # Looked up each time: a transactional test's flush reloads the catalog under new ids.
    return price_version_for(api_model=api_model, at=WEEK_START)


def event(user, *, at: datetime, session_key: str = "s1", model: str = "claude-opus-4-6", i=0, w5=0, w1=0, r=0,
          o=0, miss: str = "", cost: str = "0", pv: PriceVersion | None = None) -> UsageEvent:  # fmt: skip
    return UsageEvent(
        session_key=session_key, user=user, record_id=f"r{next(_ids)}", source="acp_turn", model=model,
        occurred_at=at, input_tokens=i, cache_write_5m_tokens=w5, cache_write_1h_tokens=w1, cache_read_tokens=r,
        output_tokens=o, cost_usd=Decimal(cost), price_version=pv or version(model), miss_cause=miss,
    )  # fmt: skip


def agent_session(user, model_id: str = "haiku"):
    AgentSession = apps.get_model("sessions_app", "AgentSession")
    return AgentSession.objects.create(user=user, provider="local", model_id=model_id, status="ready")


def switch(user, session, *, at: datetime, frm="haiku", to="opus", quoted="0.500000", outcome=SwitchOutcome.APPLIED,
           ttl: str = "1h") -> SwitchRecord:  # fmt: skip
    pv_from, pv_to = version("claude-haiku-4-5"), version("claude-opus-4-6")
    record = SwitchRecord.objects.create(
        user=user, session=session, from_model_id=frm, to_model_id=to, price_version_from=pv_from,
        price_version_to=pv_to, quoted_tax_usd=Decimal(quoted), quote_payload={"ttl": ttl, "taxUsd": quoted},
        confirmed=True, outcome=outcome,
    )  # fmt: skip
    SwitchRecord.objects.filter(pk=record.pk).update(created_at=at)
    record.created_at = at
    return record


def reconcile(record: SwitchRecord, usage_event: UsageEvent, *, actual_tax: str, actual_input: str):
    return SwitchReconciliation.objects.create(
        switch=record, usage_event=usage_event, actual_input_usd=Decimal(actual_input),
        counterfactual_stay_usd=Decimal(actual_input) - Decimal(actual_tax), actual_tax_usd=Decimal(actual_tax),
        quote_error_usd=Decimal(actual_tax) - record.quoted_tax_usd,
    )  # fmt: skip
