"""bench/gthread.conf.py plus a wall clock on each stage of a request: bench/switch_overhead.py
runs it after the headline measurement, to show where a model switch spends its time.

Each worker wraps the functions below once it has loaded the app and, when it exits, writes
{path: {stage: [milliseconds, ...]}} to $STAGES_DIR/<pid>.json. A wrapper costs about a
microsecond; the headline figures are measured without them.
"""

import collections
import functools
import json
import os
import threading
import time
from pathlib import Path

exec((Path(__file__).resolve().parent / "gthread.conf.py").read_text())  # noqa: S102

_times: dict = collections.defaultdict(lambda: collections.defaultdict(list))
_request = threading.local()


def _timed(stage: str, function, *, ends_request: bool = False):
    """`function`, clocked under the path of the request it runs for (set by _wsgi)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            path = getattr(_request, "path", None)
            if path is not None:
                _times[path][stage].append((time.perf_counter() - started) * 1000)
            if ends_request:
                _request.path = None

    return wrapper


def _wsgi(function):
    @functools.wraps(function)
    def wrapper(self, environ, start_response):
        _request.path = environ.get("PATH_INFO")
        return _timed("django: the WSGI app", function)(self, environ, start_response)

    return wrapper


def post_worker_init(worker):  # noqa: ARG001
    from django.core.handlers.wsgi import WSGIHandler
    from gunicorn.workers import gthread
    from rest_framework.views import APIView

    from billing.subscriptions import authentication
    from mk0r import throttling
    from sessions_app import bridge_client, switching, views

    # gunicorn's handling of one request on a connection: reading it, the app, writing the answer.
    gthread.ThreadWorker.handle = _timed(
        "gunicorn: request read, app, answer written", gthread.ThreadWorker.handle, ends_request=True
    )
    WSGIHandler.__call__ = _wsgi(WSGIHandler.__call__)
    APIView.initial = _timed("drf: auth, permissions, rate limit", APIView.initial)
    authentication.token_with_user = _timed("token auth (1 PostgreSQL statement)", authentication.token_with_user)
    throttling.RedisScopedRateThrottle.allow_request = _timed(
        "rate limit (1 Redis script)", throttling.RedisScopedRateThrottle.allow_request
    )
    views.ModelSwitchView.post = _timed("view: the switch", views.ModelSwitchView.post)
    views.ModelQuoteView.post = _timed("view: the quote", views.ModelQuoteView.post)
    # The names as sessions_app.switching, which orchestrates the quote and the switch, calls them.
    switching.session_with_switch_context = _timed("session read (1 statement)", switching.session_with_switch_context)
    switching.quote_create = _timed("quote computed and stored (1 statement)", switching.quote_create)
    switching.session_lease_take = _timed("lease taken, session read (1 statement)", switching.session_lease_take)
    switching.session_lease_end = _timed("ledger, model, lease back (1 statement)", switching.session_lease_end)
    bridge_client.BridgeClient.set_model = _timed("bridge call (httpx)", bridge_client.BridgeClient.set_model)


def worker_exit(server, worker):  # noqa: ARG001
    with open(os.path.join(os.environ["STAGES_DIR"], f"{os.getpid()}.json"), "w") as out:
        json.dump(_times, out)
