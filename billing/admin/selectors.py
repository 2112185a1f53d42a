"""Reads behind the admin's per-user switch-cost page, each one aggregate query. Hit rate and
flapping come from billing.usage.cache_health, the same figures the API shows."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Abs, TruncWeek
from django.utils import timezone

from billing.models import SwitchOutcome, SwitchReconciliation, SwitchRecord

ZERO = Decimal(0)


def user_switch_totals(*, user_id: int) -> dict:
    return SwitchRecord.objects.filter(user_id=user_id).aggregate(
        switches=Count("id"),
        applied=Count("id", filter=Q(outcome=SwitchOutcome.APPLIED)),
        failed=Count("id", filter=Q(outcome=SwitchOutcome.FAILED)),
        quoted_tax=Sum("quoted_tax_usd"),
    )


def user_quote_accuracy(*, user_id: int) -> dict:
    """Quoted against actual, over the user's reconciled switches."""
    totals = SwitchReconciliation.objects.filter(switch__user_id=user_id).aggregate(
        reconciled=Count("id"),
        quoted=Sum("switch__quoted_tax_usd"),
        actual=Sum("actual_tax_usd"),
        error=Sum("quote_error_usd"),
        abs_error=Sum(Abs("quote_error_usd")),
    )
    n = totals["reconciled"]
    totals["mean_abs_error"] = (totals["abs_error"] / n) if n else None
    return totals


def user_worst_sessions(*, user_id: int, limit: int = 10) -> list[dict]:
    """The user's sessions whose switches were quoted the most."""
    return list(
        SwitchRecord.objects.filter(user_id=user_id)
        .values("session_id", session_key=F("session__key"))
        .annotate(
            switches=Count("id"),
            quoted=Sum("quoted_tax_usd"),
            actual=Sum("reconciliation__actual_tax_usd"),
        )
        .order_by("-quoted", "session_id")[:limit]
    )


def user_weekly_switch_cost(*, user_id: int, weeks: int = 12, now: datetime | None = None) -> list[dict]:
    """Quoted and actual switch tax per week over the last `weeks` weeks, oldest first, gaps as zero."""
    now = now or timezone.now()
    this_monday = (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    first = this_monday - timedelta(weeks=weeks - 1)
    rows = (
        SwitchRecord.objects.filter(user_id=user_id, created_at__gte=first)
        .annotate(week=TruncWeek("created_at"))
        .values("week")
        .annotate(quoted=Sum("quoted_tax_usd"), actual=Sum("reconciliation__actual_tax_usd"), switches=Count("id"))
        .order_by("week")
    )
    by_week = {row["week"].date(): row for row in rows}
    series = []
    for k in range(weeks):
        monday = (first + timedelta(weeks=k)).date()
        row = by_week.get(monday, {})
        series.append(
            {
                "week": monday,
                "quoted": row.get("quoted") or ZERO,
                "actual": row.get("actual") or ZERO,
                "switches": row.get("switches") or 0,
            }
        )
    return series


def weekly_chart(series: list[dict], *, width: int = 720, height: int = 180) -> dict:
    """Bar geometry for an inline SVG (quoted and actual side by side per week): no JS, no CDN."""
    top = max([max(s["quoted"], s["actual"]) for s in series] + [ZERO])
    scale = (Decimal(height - 30) / top) if top > 0 else ZERO
    slot = width // max(len(series), 1)
    bar = max(slot // 3, 2)
    bars = []
    for k, s in enumerate(series):
        x = k * slot + 4
        hq = int(s["quoted"] * scale)
        ha = int(max(s["actual"], ZERO) * scale)
        bars.append(
            {
                "label": s["week"].strftime("%m-%d"),
                "x_quoted": x,
                "x_actual": x + bar,
                "x_label": x,
                "w": bar,
                "y_quoted": height - 20 - hq,
                "h_quoted": hq,
                "y_actual": height - 20 - ha,
                "h_actual": ha,
                "quoted": s["quoted"],
                "actual": s["actual"],
                "switches": s["switches"],
            }
        )
    return {"width": width, "height": height, "bars": bars, "top": top, "baseline": height - 20}
