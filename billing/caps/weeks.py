"""Cap weeks: ISO week labels and the window a report covers, from the user's reset moment."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from billing.models import CapSettings, ResetMode
from mk0r.errors import ServiceError

WEEK = timedelta(days=7)
_WEEK_RE = re.compile(r"^(\d{4})-W(\d{2})$")


class InvalidWeek(ServiceError):
    code = "invalid_week"
    message = "week must look like 2026-W10."


def iso_week_label(at: datetime) -> str:
    year, week, _ = at.astimezone(UTC).isocalendar()
    return f"{year}-W{week:02d}"


def iso_week_start(label: str) -> datetime:
    match = _WEEK_RE.match(label or "")
    if not match:
        raise InvalidWeek(extra={"week": label})
    try:
        return datetime.fromisocalendar(int(match[1]), int(match[2]), 1).replace(tzinfo=UTC)
    except ValueError as exc:
        raise InvalidWeek(f"No such ISO week: {label}.", extra={"week": label}) from exc


@dataclass(frozen=True, slots=True)
class Window:
    week: str
    start: datetime
    end: datetime


def _reset_offset(row: CapSettings | None) -> timedelta:
    if row is None or row.reset_mode == ResetMode.ROLLING:
        return timedelta(0)
    return timedelta(days=row.reset_weekday, hours=row.reset_time.hour, minutes=row.reset_time.minute)


def report_window(*, row: CapSettings | None, now: datetime, week: str | None = None, previous: bool = False) -> Window:
    """The cap week a report covers: from the user's reset moment inside the ISO week (Monday
    00:00 UTC by default). Rolling-window users get reports per ISO week."""
    offset = _reset_offset(row)
    if week is not None:
        start = iso_week_start(week) + offset
    else:
        start = iso_week_start(iso_week_label(now)) + offset
        if start > now:
            start -= WEEK
        if previous:
            start -= WEEK
    return Window(iso_week_label(start), start, start + WEEK)


def is_rolling(row: CapSettings | None) -> bool:
    return row is not None and row.reset_mode == ResetMode.ROLLING
