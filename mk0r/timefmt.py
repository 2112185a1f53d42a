from datetime import datetime


def iso_z(at: datetime | None) -> str | None:
    """A time as the API writes it: ISO 8601 in UTC with a `Z` (None stays None)."""
    return at.isoformat().replace("+00:00", "Z") if at is not None else None
