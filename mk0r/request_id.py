"""A request id on every request, its response and every log record written while serving it.

The id comes from the X-Request-ID header when a proxy or client sent a sane one,
otherwise it is made here. It lives in a context variable, so each request (an ASGI task, or
a thread under WSGI), the view thread serving it and its streamed response see their own.
"""

import contextvars
import json
import logging
import re
import uuid
from datetime import UTC, datetime

from django.core.signals import request_finished

from .async_middleware import AsyncCapableMiddleware

HEADER = "X-Request-ID"
META_KEY = "HTTP_X_REQUEST_ID"
# What we accept from outside: short, printable, no spaces (it ends up in logs and headers).
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    return request_id_var.get()


class RequestIdMiddleware(AsyncCapableMiddleware):
    def before(self, request):
        incoming = request.META.get(META_KEY, "")
        request_id = incoming if _ACCEPTABLE.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        # Not reset on the way out: Django logs 4xx/5xx answers and streams the body after the
        # middleware has returned. It is cleared when the response is closed (request_finished).
        # Under ASGI each request is a task of its own with its own copy of the context, and
        # sync_to_async carries it to the thread that runs the view.
        request_id_var.set(request_id)
        return None

    def after(self, request, response):
        response[HEADER] = request.request_id
        return response


def _clear_request_id(**kwargs) -> None:
    request_id_var.set(None)


request_finished.connect(_clear_request_id, dispatch_uid="mk0r.request_id.clear")


class RequestIdFilter(logging.Filter):
    """Puts `request_id` on every record ("-" outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = current_request_id() or "-"
        return True


# LogRecord attributes that are not extras passed by the caller.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}


def _request_id_of(record: logging.LogRecord) -> str | None:
    """The record's request id; None outside a request (the filter's "-" is for plain text)."""
    value = getattr(record, "request_id", None)
    if value and value != "-":
        return value
    return current_request_id()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": _request_id_of(record),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)
