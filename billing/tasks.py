"""Celery tasks: thin wrappers, one service call each, safe to repeat.

The schedule is the app's beat_schedule in mk0r/celery.py.
"""

from celery import shared_task

from billing.caps.delivery import cap_report_deliver
from billing.caps.reports import cap_reports_dispatch
from billing.quotes.services import quotes_prune

# The project's app, configured from the settings: a task sent from a process that imported
# this module (a test, a shell) goes through it, not through Celery's unconfigured default.
from mk0r.celery import app  # noqa: F401


@shared_task(acks_late=True)
def cap_reports_run(week: str | None = None, previous: bool = False) -> int:
    """Build the reports of every flat-rate user (in chunks) and fan out one delivery per user."""
    return cap_reports_dispatch(week=week, previous=previous, deliver=cap_report_deliver_task.delay)


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=3)
def cap_report_deliver_task(report_id: int) -> dict:
    """Alerts and the weekly mail of one user's report; repeats send nothing new."""
    delivery = cap_report_deliver(report_id=report_id)
    return {"alerts": delivery.alerts, "reportSent": delivery.report_sent}


@shared_task(acks_late=True)
def quotes_prune_task() -> int:
    """Delete expired quotes that were never confirmed (see quotes_prune)."""
    return quotes_prune()
