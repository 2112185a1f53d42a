"""Admin: the price catalog (with history), cache state, the switch ledger and its per-user
cost review, usage and rate-limit events, reconciliations, subscriptions, and the cap model
(an estimate: Anthropic publishes no absolute caps) with its settings, reports and alerts.

Big tables (usage events, the ledger) stay fast at millions of rows: view-only, ordered by
primary key, related rows joined (no N+1), no full COUNT(*) (see EstimatedCountPaginator),
no date hierarchy, and no filter that asks the database for DISTINCT values of a big column.
Money shows as money (billing.money.usd_display) wherever an amount is listed.
"""

from . import caps, catalog, switches, usage  # noqa: F401  (each module registers its admins)
from .base import EstimatedCountPaginator

__all__ = ["EstimatedCountPaginator"]
