"""Delivery of weekly cap reports: threshold alerts during the week, the report once it is over,
by mail and webhook.

Idempotency: one CapAlert per (user, week, threshold). `sent_at` is set under the report's
row lock, so a retried or duplicated delivery neither creates nor sends twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import httpx
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from billing.caps.plan_caps import CAP_UNIT, ESTIMATE
from billing.models import CapAlert, CapReport, CapSettings
from billing.money import usd_display
from mk0r.timefmt import iso_z

log = logging.getLogger(__name__)

THRESHOLDS = (50, 80, 100)


def cap_report_json(report: CapReport) -> dict:
    return {
        "week": report.week,
        "weekStart": iso_z(report.week_start),
        "weekEnd": iso_z(report.week_end),
        "plan": report.plan,
        "label": ESTIMATE,
        "capUnits": str(report.cap_units),
        "capSource": report.cap_source,
        "units": str(report.units),
        "capPercent": str(report.percent),
        "switchUnits": str(report.switch_units),
        "missUnits": str(report.miss_units),
        "requests": report.requests,
        "runsOutAt": iso_z(report.runs_out_at),
        "worstSessions": report.worst_sessions,
        "computedAt": iso_z(report.computed_at),
        "sentAt": iso_z(report.sent_at),
    }


def _webhook_url(row: CapSettings | None) -> str:
    return (row.webhook_url if row is not None else "") or settings.CAP_ALERT_WEBHOOK_URL


def _webhook_post(url: str, payload: dict) -> bool:
    try:
        response = httpx.post(url, json=payload, timeout=settings.CAP_WEBHOOK_TIMEOUT, follow_redirects=False)
    except httpx.HTTPError as exc:
        log.warning("cap webhook %s failed: %s", url, exc)
        return False
    if response.status_code >= 300:
        log.warning("cap webhook %s answered %s", url, response.status_code)
        return False
    return True


def _notify(*, user, row: CapSettings | None, subject: str, body: str, payload: dict) -> list[str]:
    channels = []
    if user.email:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email])
        channels.append("email")
    url = _webhook_url(row)
    if url and _webhook_post(url, payload):
        channels.append("webhook")
    return channels


def cap_report_text(report: CapReport) -> str:
    """The report for people, in the settings' unit (CAP_WEEKLY_UNITS: API-equivalent dollars)."""
    over = report.computed_at >= report.week_end
    used = _percent_text(report.percent)
    out_at = f"{report.runs_out_at:%a %Y-%m-%d %H:%M} UTC" if report.runs_out_at else ""
    if over:
        ran_out = f"it ran out on {out_at}." if out_at else "it did not run out."
        outcome = f"The week is over: {used} of the cap used; {ran_out}"
    elif out_at:
        outcome = f"At the current rate the cap runs out on {out_at}."
    else:
        outcome = "At the current rate the cap lasts the week."
    lines = [
        f"Weekly cap report {report.week} ({report.week_start:%Y-%m-%d %H:%M} to {report.week_end:%Y-%m-%d %H:%M} UTC)",
        f"Plan {report.plan}: {usd_display(report.units)} of an estimated {usd_display(report.cap_units)} a week "
        f"in {CAP_UNIT} ({used}, {report.cap_source}). Anthropic publishes no absolute caps: these figures are "
        "estimates.",
        f"Due to model switches: {usd_display(report.switch_units)}; "
        f"to other cache misses: {usd_display(report.miss_units)}.",
        outcome,
    ]
    for s in report.worst_sessions:
        lines.append(f"  session {s['sessionKey']}: {usd_display(Decimal(s['units']))} ({s['requests']} requests)")
    return "\n".join(lines)


def _percent_text(percent: Decimal) -> str:
    if 0 < percent < Decimal("0.01"):
        return "<0.01%"
    return f"{percent.quantize(Decimal('0.01'))}%"


@dataclass(frozen=True)
class Delivery:
    alerts: list[int]
    report_sent: bool


def cap_report_deliver(*, report_id: int, now: datetime | None = None) -> Delivery:
    """Alert on thresholds crossed during the week; send the report once the week is over.

    Runs under the report's row lock, so duplicated deliveries serialize and the second
    finds the alerts and `sent_at` already set.
    """
    now = now or timezone.now()
    with transaction.atomic():
        report = CapReport.objects.select_for_update().select_related("user").filter(pk=report_id).first()
        if report is None:
            return Delivery([], False)
        row = CapSettings.objects.filter(user_id=report.user_id).first()
        if now >= report.week_end:
            if report.sent_at is not None:
                return Delivery([], False)
            payload = {"type": "cap_report", "user": report.user.get_username(), **cap_report_json(report)}
            _notify(
                user=report.user,
                row=row,
                subject=f"Your weekly cap report {report.week} (estimate)",
                body=cap_report_text(report),
                payload=payload,
            )
            report.sent_at = now
            report.save(update_fields=["sent_at"])
            return Delivery([], True)
        return Delivery(_alerts_send(report=report, row=row, now=now), False)


def _alerts_send(*, report: CapReport, row: CapSettings | None, now: datetime) -> list[int]:
    crossed = [t for t in THRESHOLDS if report.percent >= t]
    if not crossed:
        return []
    new = []
    for threshold in crossed:
        _, created = CapAlert.objects.get_or_create(
            user_id=report.user_id, week=report.week, threshold=threshold, defaults={"percent": report.percent}
        )
        if created:
            new.append(threshold)
    if not new:
        return []
    # Several thresholds crossed since the last check: one message, about the highest.
    top = max(new)
    body = (
        f"You have used {_percent_text(report.percent)} of your estimated weekly cap "
        f"({usd_display(report.units)} of {usd_display(report.cap_units)} in {CAP_UNIT}) in {report.week}. "
        f"Model switches: {usd_display(report.switch_units)}; other cache misses: {usd_display(report.miss_units)}. "
        "Anthropic publishes no absolute caps: these figures are estimates."
    )
    payload = {
        "type": "cap_alert",
        "threshold": top,
        "user": report.user.get_username(),
        **cap_report_json(report),
    }
    channels = _notify(
        user=report.user, row=row, subject=f"{top}% of your weekly cap used (estimate)", body=body, payload=payload
    )
    CapAlert.objects.filter(user_id=report.user_id, week=report.week, threshold__in=new).update(
        sent_at=now, channels=channels
    )
    return new
