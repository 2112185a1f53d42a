"""Calibration of a user's weekly cap from the utilization their weekly rate-limit events report."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from statistics import median

from billing.caps.burn import WeightBook, burn_compute
from billing.caps.weeks import WEEK, Window
from billing.models import CapSettings, RateLimitEvent

# Below this utilization a calibration divides by too small a number to be worth anything.
MIN_CALIBRATION_UTILIZATION = Decimal("0.05")
CALIBRATION_EVENTS = 3


def utilization_fraction(value: Decimal) -> Decimal:
    """Rate-limit events report 0..1 or 0..100; anything above 1 is a percentage."""
    return value / 100 if value > 1 else value


def cap_calibrate(*, user_id: int, plan: str, window: Window, now: datetime, book: WeightBook) -> CapSettings | None:
    """Estimate the user's units per week from their latest weekly rate-limit events:
    units burned since that week's start / the utilization the event reported."""
    events = list(
        RateLimitEvent.objects.filter(
            user_id=user_id,
            rate_limit_type="weekly",
            utilization__isnull=False,
            occurred_at__gte=window.start,
            occurred_at__lt=min(window.end, now),
        ).order_by("-occurred_at")[: CALIBRATION_EVENTS * 3]
    )
    estimates = []
    for event in events:
        fraction = utilization_fraction(event.utilization)
        if fraction < MIN_CALIBRATION_UTILIZATION:
            continue
        # resetsAt says when that week ends, hence when it began.
        start = event.resets_at - WEEK if event.resets_at else window.start
        burn = burn_compute(
            user_ids=[user_id], plans={user_id: plan}, start=start, end=event.occurred_at, book=book
        ).get(user_id)
        if burn is None or burn.total.units <= 0:
            continue
        estimates.append(burn.total.units / fraction)
        if len(estimates) == CALIBRATION_EVENTS:
            break
    if not estimates:
        return None
    row, _ = CapSettings.objects.get_or_create(user_id=user_id)
    row.calibrated_units = Decimal(median(estimates)).quantize(Decimal("0.0001"))
    row.calibrated_plan = plan
    row.calibrated_at = now
    row.calibration_events = len(estimates)
    row.save(update_fields=["calibrated_units", "calibrated_plan", "calibrated_at", "calibration_events", "updated_at"])
    return row
