"""Argument types the billing commands share: bad input is a usage error naming the option
(argparse's "argument --at: ..."), never a traceback."""

import math
from argparse import ArgumentTypeError
from datetime import UTC, datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime

# A session idle longer than this (about 31 years) says nothing more about its cache.
MAX_IDLE_SECONDS = 10**9


def iso_datetime(value: str) -> datetime:
    """An ISO 8601 date-time (a date alone is its midnight); one without an offset is UTC."""
    try:
        parsed = parse_datetime(value)
    except ValueError:  # well formed, but no such date or time ("2026-13-01T00:00")
        parsed = None
    if parsed is None:
        raise ArgumentTypeError(f"not an ISO date-time: {value!r}")
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)


def token_count(value: str) -> int:
    """A whole number of tokens, 0 or more."""
    try:
        count = int(value)
    except ValueError:
        count = -1
    if count < 0:
        raise ArgumentTypeError(f"not a token count (a whole number, 0 or more): {value!r}")
    return count


def idle_seconds(value: str) -> float:
    """Seconds, from 0 to MAX_IDLE_SECONDS."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds <= MAX_IDLE_SECONDS:  # NaN fails both comparisons
        raise ArgumentTypeError(f"not a number of seconds from 0 to {MAX_IDLE_SECONDS:,}: {value!r}")
    return seconds
