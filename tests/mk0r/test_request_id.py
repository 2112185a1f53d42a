"""Request ids: taken from X-Request-ID or made, echoed on the response, on every log record."""

import io
import json
import logging

import pytest
from django.http import HttpResponse, StreamingHttpResponse
from django.test import RequestFactory
from django.urls import path

from mk0r.request_id import JsonFormatter, RequestIdFilter, RequestIdMiddleware, current_request_id

log = logging.getLogger("tests.request_id")


@pytest.fixture
def records():
    """What the configured console handler would write, as JSON lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(previous)


def _logging_view(request):
    log.info("in the view", extra={"sessionKey": "abc"})
    return HttpResponse("ok")


def _streaming_view(request):
    def body():
        log.info("while streaming")
        yield b"data"

    return StreamingHttpResponse(body())


def _failing_view(request):
    return HttpResponse("gone", status=404)


urlpatterns = [path("log", _logging_view), path("stream", _streaming_view), path("fail", _failing_view)]


@pytest.fixture
def routes(settings):
    settings.ROOT_URLCONF = __name__


def test_incoming_id_is_kept_and_on_every_record(client, routes, records):
    response = client.get("/log", HTTP_X_REQUEST_ID="lb-1234-abcd")
    assert response["X-Request-ID"] == "lb-1234-abcd"
    entry = next(r for r in records() if r["message"] == "in the view")
    assert entry["request_id"] == "lb-1234-abcd"
    assert entry["level"] == "INFO" and entry["logger"] == "tests.request_id"
    assert entry["sessionKey"] == "abc"
    assert entry["time"].endswith("Z")


def test_an_id_is_made_when_none_or_a_bad_one_comes(client, routes, records):
    made = client.get("/log")["X-Request-ID"]
    assert len(made) == 32 and int(made, 16) >= 0
    unsafe = client.get("/log", HTTP_X_REQUEST_ID="bad id\nwith newline")["X-Request-ID"]
    assert unsafe != "bad id\nwith newline" and len(unsafe) == 32
    assert client.get("/log")["X-Request-ID"] != made
    ids = [r["request_id"] for r in records() if r["message"] == "in the view"]
    assert ids[0] == made


def test_djangos_own_records_of_a_request_carry_its_id(client, routes, records):
    client.get("/fail", HTTP_X_REQUEST_ID="rid-404")
    entry = next(r for r in records() if r["logger"] == "django.request")
    assert entry["request_id"] == "rid-404"


@pytest.mark.django_db  # closing the response closes old database connections
def test_streamed_bodies_log_with_the_id_and_it_is_cleared_after(client, routes, records):
    response = client.get("/stream", HTTP_X_REQUEST_ID="rid-stream")
    assert b"".join(response.streaming_content) == b"data"
    response.close()
    entry = next(r for r in records() if r["message"] == "while streaming")
    assert entry["request_id"] == "rid-stream"
    assert current_request_id() is None


def test_outside_a_request_the_id_is_a_dash(records):
    log.info("no request here")
    plain = logging.Formatter("%(request_id)s %(message)s")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "msg", None, None)
    RequestIdFilter().filter(record)
    assert plain.format(record) == "- msg"
    assert next(r for r in records() if r["message"] == "no request here")["request_id"] is None


def test_exceptions_are_in_the_json():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    entry = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in entry["exc_info"]


def test_middleware_sets_it_on_the_request():
    seen = {}

    def view(request):
        seen["id"] = request.request_id
        seen["current"] = current_request_id()
        return HttpResponse()

    response = RequestIdMiddleware(view)(RequestFactory().get("/", HTTP_X_REQUEST_ID="abc-1"))
    assert seen == {"id": "abc-1", "current": "abc-1"}
    assert response["X-Request-ID"] == "abc-1"
