"""One real Celery worker (Redis broker, the test's PostgreSQL database): the beat task,
sent twice as beat would, builds each report once, sends each mail once, alerts once."""

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from django.db import connection
from django.utils import timezone

from billing.caps.weeks import iso_week_label
from billing.models import CapAlert, CapReport, UsageEvent
from tests.billing.caps.cap_fixtures import WEEK, WEEK_START, event, oauth_user

ROOT = Path(__file__).resolve().parents[3]
BROKER_DB = 15

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.skipif(
        not (os.environ.get("DATABASE_URL", "").startswith("postgres") and os.environ.get("REDIS_URL")),
        reason="needs PostgreSQL and Redis (set DATABASE_URL and REDIS_URL)",
    ),
]


def _broker_url() -> str:
    """The machine's Redis, on a database number nothing else uses."""
    return urlunsplit(urlsplit(os.environ["REDIS_URL"])._replace(path=f"/{BROKER_DB}"))


def _test_database_url() -> str:
    s = connection.settings_dict
    auth = quote(s["USER"] or "")
    if s["PASSWORD"]:
        auth += ":" + quote(s["PASSWORD"])
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def _wait(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.django_db(transaction=True)
def test_worker_builds_reports_and_alerts_once(tmp_path):
    import redis
    from celery import Celery

    broker = _broker_url()
    redis.Redis.from_url(broker).flushdb()
    now = timezone.now()
    users = [oauth_user(f"w{i}", plan="pro") for i in range(3)]  # 50 units a week
    UsageEvent.objects.bulk_create(
        [event(u, at=WEEK_START + timedelta(hours=1), w1=1_000_000) for u in users]  # 10 units in W10
        + [event(u, at=now - timedelta(minutes=30), w1=3_000_000) for u in users]  # 30 units now: 60%
    )
    mail_dir = tmp_path / "mail"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mk0r.settings.base",
        "DATABASE_URL": _test_database_url(),
        "REDIS_URL": broker,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mail_dir),
        "LOG_LEVEL": "WARNING",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "mk0r", "worker", "--pool", "solo", "--loglevel", "WARNING",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"cap-test-{os.getpid()}@%h"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    sender = Celery(broker=broker)
    try:
        # What beat sends: the task by name, twice for each schedule entry.
        for _ in range(2):
            sender.send_task("billing.tasks.cap_reports_run", kwargs={"week": WEEK})
            sender.send_task("billing.tasks.cap_reports_run", kwargs={"previous": False})

        current = iso_week_label(now)

        def settled():
            queue_empty = redis.Redis.from_url(broker).llen("celery") == 0
            return (
                queue_empty
                and CapReport.objects.filter(week=WEEK, sent_at__isnull=False).count() == 3
                and CapAlert.objects.filter(week=current, sent_at__isnull=False).count() == 3
            )

        assert _wait(settled), _output(worker)
        time.sleep(1.5)  # let any duplicate that is still running finish
        assert redis.Redis.from_url(broker).llen("celery") == 0
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
        sender.close()

    assert CapReport.objects.filter(week=WEEK).count() == 3
    assert CapReport.objects.filter(week=current).count() == 3
    assert set(CapReport.objects.filter(week=WEEK).values_list("units", flat=True)) == {10}
    assert sorted(CapAlert.objects.values_list("threshold", flat=True)) == [50, 50, 50]
    assert all(a.channels == ["email"] for a in CapAlert.objects.all())
    messages = [p.read_text() for p in mail_dir.iterdir()]
    subjects = sorted(line for m in messages for line in m.splitlines() if line.startswith("Subject:"))
    assert subjects == (
        ["Subject: 50% of your weekly cap used (estimate)"] * 3
        + [f"Subject: Your weekly cap report {WEEK} (estimate)"] * 3
    )


def _output(worker) -> str:
    worker.terminate()
    try:
        out, _ = worker.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        worker.kill()
        out, _ = worker.communicate()
    return out.decode(errors="replace")[-4000:]
