"""What starting the service and a sandbox prints: no warning about SQLite and the covering
index, and one log line for the wait for a bridge instead of one per health poll."""

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from django.core import checks
from django.db import connection

from billing.models import UsageEvent
from sessions_app.sandboxes.base import SandboxError, wait_for_bridge


@pytest.mark.django_db
def test_no_covering_index_warning_where_the_database_cannot_cover():
    found = checks.run_checks(databases=["default"])
    assert [m for m in found if m.id == "models.W040"] == []
    # Silenced for that model, not dropped: the index still covers on PostgreSQL.
    [cover] = [i for i in UsageEvent._meta.indexes if i.name == "billing_usage_user_time_cover"]
    assert cover.include
    if not connection.features.supports_covering_indexes:
        assert [m.id for m in UsageEvent.check(databases=["default"])] == []


class _Warming(BaseHTTPRequestHandler):
    """503 to the first `warming` health checks, then 200."""

    warming = 5
    seen = 0

    def do_GET(self):  # noqa: N802 (http.server's name)
        type(self).seen += 1
        status = 503 if type(self).seen <= self.warming else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def warming_bridge():
    _Warming.seen = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Warming)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_wait_for_a_bridge_is_one_log_line(warming_bridge, caplog):
    caplog.set_level(logging.INFO)
    wait_for_bridge(warming_bridge, "token", timeout=10)
    assert _Warming.seen == 6
    assert [r for r in caplog.records if r.name == "httpx"] == []
    [line] = [r.getMessage() for r in caplog.records if r.name == "sessions_app.sandboxes.base"]
    assert line.startswith(f"bridge {warming_bridge} up after") and "(6 health checks)" in line

    # Outside the wait, httpx logs as before.
    caplog.clear()
    httpx.get(f"{warming_bridge}/health")
    assert [r for r in caplog.records if r.name == "httpx"]


def test_a_bridge_that_never_comes_up_is_one_warning(warming_bridge, caplog):
    caplog.set_level(logging.INFO)
    _Warming.warming = 10_000
    try:
        with pytest.raises(SandboxError):
            wait_for_bridge(warming_bridge, "token", timeout=1)
    finally:
        _Warming.warming = 5
    assert [r for r in caplog.records if r.name == "httpx"] == []
    [record] = [r for r in caplog.records if r.name == "sessions_app.sandboxes.base"]
    assert record.levelno == logging.WARNING and "last: status 503" in record.getMessage()
