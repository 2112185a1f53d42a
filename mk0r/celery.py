import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mk0r.settings.base")

app = Celery("mk0r")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
