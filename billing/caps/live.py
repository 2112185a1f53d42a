"""The user's live view of this week's cap: GET /api/billing/cap."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from billing.caps.burn import (
    ZERO,
    CapUnits,
    UserBurn,
    WeightBook,
    burn_compute,
    burn_worst_sessions,
    runs_out_at,
    units_quantize,
)
from billing.caps.cap_model import cap_percent
from billing.caps.plan_caps import ESTIMATE, PlanCap, plan_cap_for
from billing.caps.weeks import WEEK, Window, is_rolling, iso_week_label, report_window
from billing.models import BillingMode, CapPlan, CapSettings, ResetMode, Subscription
from mk0r.errors import ServiceError
from mk0r.timefmt import iso_z


class NoWeeklyCap(ServiceError):
    status_code = 404
    code = "no_weekly_cap"
    message = "Your plan bills API dollars and has no weekly cap."


def cap_live(*, user, now: datetime | None = None) -> dict:
    """This week so far and its projection, for GET /api/billing/cap."""
    now = now or timezone.now()
    subscription = Subscription.objects.filter(user=user).first()
    cap_plan = None
    if subscription is not None and subscription.billing_mode == BillingMode.OAUTH and subscription.is_active:
        cap_plan = CapPlan.objects.filter(plan=subscription.plan).first()
    if cap_plan is None:
        raise NoWeeklyCap(extra={"plan": subscription.plan if subscription else "free"})
    row = CapSettings.objects.filter(user=user).first()
    cap: PlanCap = plan_cap_for(plan=subscription.plan, cap_plan=cap_plan, settings_row=row)
    rolling = is_rolling(row)
    # Rolling: the last 7 days, always a full week. Fixed: since the last reset moment.
    window = Window(iso_week_label(now), now - WEEK, now) if rolling else report_window(row=row, now=now)
    end = min(window.end, now)
    burn = (
        burn_compute(
            user_ids=[user.pk], plans={user.pk: subscription.plan}, start=window.start, end=end, book=WeightBook(now)
        ).get(user.pk)
        or UserBurn()
    )
    units = units_quantize(burn.total.units)
    elapsed = (end - window.start).total_seconds()
    if rolling:
        # A steady rate over a trailing week never crosses the cap it is under.
        projected, out_at = units, (now if units >= cap.units else None)
    else:
        projected = units_quantize(units * Decimal(WEEK.total_seconds()) / Decimal(elapsed)) if elapsed > 0 else units
        out_at = runs_out_at(units=units, cap_units=cap.units, start=window.start, end=window.end, now=now)
    return {
        "label": ESTIMATE,
        "plan": subscription.plan,
        "resetMode": ResetMode.ROLLING if rolling else ResetMode.FIXED,
        "weekStart": iso_z(window.start),
        "weekEnd": iso_z(window.end),
        "capUnits": str(cap.units),
        "configuredCapUnits": str(cap.configured_units),
        "capSource": cap.source,
        "calibration": cap.calibration_json(),
        "units": str(units),
        "capPercent": str(cap_percent(units=units, cap=CapUnits(cap.units))),
        "switchUnits": str(units_quantize(max(burn.total.switch_units, ZERO))),
        "missUnits": str(units_quantize(max(burn.total.miss_units, ZERO))),
        "requests": burn.total.requests,
        "projection": {
            "unitsAtWeekEnd": str(projected),
            "capPercentAtWeekEnd": str(cap_percent(units=projected, cap=CapUnits(cap.units))),
            "runsOutAt": iso_z(out_at),
        },
        "worstSessions": burn_worst_sessions(burn),
    }
