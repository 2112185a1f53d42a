"""The Celery app: the worker and beat load it (`celery -A mk0r`), and `billing.tasks` imports
it so that sending a task goes through it. Django does not load it: the web processes and the
management commands send no task, and Celery's import is a tenth of a second of each start."""

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mk0r.settings.base")

app = Celery("mk0r")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The one place Celery beat's schedule lives.
app.conf.beat_schedule = {
    # Every hour at minute 5 (UTC): refresh each flat-rate user's current week and send the
    # 50/80/100% alerts it has crossed (each at most once per user and week).
    "cap-reports-current": {
        "task": "billing.tasks.cap_reports_run",
        "schedule": crontab(minute="5"),
        "kwargs": {"previous": False},
    },
    # Every day at 00:30 UTC: finish and send each user's previous week's report (once;
    # daily because users' weeks reset on different weekdays).
    "cap-reports-previous-week": {
        "task": "billing.tasks.cap_reports_run",
        "schedule": crontab(minute="30", hour="0"),
        "kwargs": {"previous": True},
    },
    # Every day at 03:15 UTC: delete expired quotes that were never confirmed.
    "quotes-prune": {"task": "billing.tasks.quotes_prune_task", "schedule": crontab(minute="15", hour="3")},
}
