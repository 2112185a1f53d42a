"""Expired, never-confirmed quotes are deleted after the retention period; the rest stay."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from billing.catalog.selectors import price_version_for
from billing.models import Quote, SwitchOutcome, SwitchRecord
from billing.quotes.services import quotes_prune
from billing.tasks import quotes_prune_task
from sessions_app.models import AgentSession

pytestmark = pytest.mark.django_db


@pytest.fixture
def session():
    user = get_user_model().objects.create(username="prune-user")
    return AgentSession.objects.create(user=user, provider="local", model_id="haiku", status="ready")


def _quote(session, *, expired_days_ago: float, used: bool = False) -> Quote:
    now = timezone.now()
    version = price_version_for(api_model="claude-opus-4-6", at=now)
    return Quote.objects.create(
        user=session.user, session=session, from_model_id="haiku", to_model_id="opus", price_version_from=version,
        price_version_to=version, tax_usd=Decimal("0.5"), payload={}, expires_at=now - timedelta(days=expired_days_ago),
        used_at=now if used else None,
    )  # fmt: skip


def test_only_long_expired_unconfirmed_quotes_go(session):
    old = settings.QUOTE_RETENTION_DAYS + 1
    stale = [_quote(session, expired_days_ago=old) for _ in range(3)]
    used = _quote(session, expired_days_ago=old, used=True)
    failed_switch = _quote(session, expired_days_ago=old)
    SwitchRecord.objects.create(
        user=session.user, session=session, quote=failed_switch, from_model_id="haiku", to_model_id="opus",
        price_version_from=failed_switch.price_version_from, price_version_to=failed_switch.price_version_to,
        quoted_tax_usd=Decimal("0.5"), quote_payload={}, confirmed=True, outcome=SwitchOutcome.FAILED,
    )  # fmt: skip
    recent = _quote(session, expired_days_ago=settings.QUOTE_RETENTION_DAYS - 1)
    live = _quote(session, expired_days_ago=-0.001)

    assert quotes_prune(batch_size=2) == len(stale)

    assert set(Quote.objects.values_list("pk", flat=True)) == {used.pk, failed_switch.pk, recent.pk, live.pk}
    assert SwitchRecord.objects.get().quote_id == failed_switch.pk
    assert quotes_prune() == 0


def test_the_daily_task_is_scheduled_and_prunes(session):
    _quote(session, expired_days_ago=settings.QUOTE_RETENTION_DAYS + 1)
    from mk0r.celery import app

    entry = app.conf.beat_schedule["quotes-prune"]
    assert entry["task"] == quotes_prune_task.name
    assert quotes_prune_task.delay().get() == 1
