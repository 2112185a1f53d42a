"""Liveness and readiness probes for load balancers and orchestrators.

/healthz: the process answers (touches nothing else, so a database outage never gets
a healthy web process restarted). /readyz: the database and Redis answer; 503 names
the one that failed and the kind of failure. The body is public: the error's own text,
which names hosts and ports, goes to the log only. Redis is checked only where REDIS_URL
is configured; while it is down, rate limits are not enforced (mk0r.throttling), and
the body says so.
"""

import functools
import logging

from django.conf import settings
from django.db import connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from .errors import json_error

logger = logging.getLogger(__name__)

REDIS_TIMEOUT_SECONDS = 2.0
# What a failed check means for users, beyond "not ready".
EFFECTS = {"redis": "Rate limits are not enforced while Redis is down."}


def _get_only(view):
    """Django's require_GET, answering any other method with the API's error shape (before a
    CSRF check could answer it with a page)."""

    @csrf_exempt
    @functools.wraps(view)
    def checked(request, *args, **kwargs):
        if request.method != "GET":
            response = json_error(405, "method_not_allowed", f"Method {request.method} is not allowed here; use GET.")
            response["Allow"] = "GET"
            return response
        return view(request, *args, **kwargs)

    return checked


@never_cache
@_get_only
def healthz(request):
    return JsonResponse({"status": "ok"})


def _database() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")


def _redis() -> None:
    import redis

    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=REDIS_TIMEOUT_SECONDS, socket_timeout=REDIS_TIMEOUT_SECONDS
    )
    try:
        client.ping()
    finally:
        client.close()


@never_cache
@_get_only
def readyz(request):
    checks = {"database": _database}
    if settings.REDIS_URL:
        checks["redis"] = _redis
    results, failed = {}, []
    for name, check in checks.items():
        try:
            check()
        except Exception as exc:  # any failure means "not ready"; say which and why
            logger.warning("readiness check %s failed: %s: %s", name, type(exc).__name__, exc)
            results[name] = {"ok": False, "error": type(exc).__name__}
            if name in EFFECTS:
                results[name]["effect"] = EFFECTS[name]
            failed.append(name)
        else:
            results[name] = {"ok": True}
    body = {"status": "ok" if not failed else "unavailable", "checks": results, "failed": failed}
    return JsonResponse(body, status=503 if failed else 200)
