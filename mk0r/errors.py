"""One error shape for the whole API: {"code": ..., "message": ..., "extra": {...}}.

Services raise ServiceError (or a subclass); DRF's own exceptions (auth, parse,
validation, throttling) are translated here so that a client only ever has to
read `code`.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from rest_framework import status

if TYPE_CHECKING:
    from rest_framework.response import Response


class ServiceError(Exception):
    status_code = status.HTTP_400_BAD_REQUEST
    code = "error"
    message = "The request failed."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        status_code: int | None = None,
        extra: dict[str, Any] | None = None,
        top_level: dict[str, Any] | None = None,
    ) -> None:
        self.message = message or self.message
        self.code = code or self.code
        self.status_code = status_code or self.status_code
        self.extra = extra or {}
        # Fields a client reads next to `code`, e.g. the quote to confirm with confirmation_required.
        self.top_level = top_level or {}
        super().__init__(self.message)


def error_body(code: str, message: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "extra": extra or {}}


def _validation_message(detail: Any) -> str:
    if isinstance(detail, dict):
        field, errors = next(iter(detail.items()))
        first = errors[0] if isinstance(errors, list) and errors else errors
        return f"{field}: {_validation_message(first)}" if field != "non_field_errors" else str(first)
    if isinstance(detail, list) and detail:
        return _validation_message(detail[0])
    return str(detail)


@cache
def _drf_codes() -> dict[type, str]:
    from rest_framework import exceptions

    return {
        exceptions.NotAuthenticated: "not_authenticated",
        exceptions.AuthenticationFailed: "authentication_failed",
        exceptions.PermissionDenied: "permission_denied",
        exceptions.NotFound: "not_found",
        exceptions.MethodNotAllowed: "method_not_allowed",
        exceptions.NotAcceptable: "not_acceptable",
        exceptions.UnsupportedMediaType: "unsupported_media_type",
        exceptions.Throttled: "throttled",
        exceptions.ParseError: "invalid_request",
        exceptions.ValidationError: "invalid_request",
    }


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    # DRF's views, responses and exceptions are imported here, not at the top: they load the
    # serializers, requests and redis (a quarter of a second), which every importer of
    # ServiceError (billing's pure logic, the transcript import) would pay for. Only a DRF view
    # calls this handler, and DRF is loaded by then.
    from rest_framework import exceptions
    from rest_framework.response import Response
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, ServiceError):
        response = Response({**error_body(exc.code, exc.message, exc.extra), **exc.top_level}, status=exc.status_code)
        if "retryAfterSeconds" in exc.extra:
            response["Retry-After"] = str(exc.extra["retryAfterSeconds"])
        return response
    if isinstance(exc, RequestDataTooBig):
        return Response(
            error_body("payload_too_large", "The request body is larger than the server accepts."),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = next((c for cls, c in _drf_codes().items() if isinstance(exc, cls)), "error")
    if isinstance(exc, exceptions.ValidationError):
        message, extra = _validation_message(exc.detail), {"fields": exc.detail}
    else:
        message, extra = str(getattr(exc, "detail", exc)), {}
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        extra["retryAfterSeconds"] = int(exc.wait)
    response.data = error_body(code, message, extra)
    return response


def json_error(status_code: int, code: str, message: str) -> JsonResponse:
    """For plain Django views (404/500 handlers) outside DRF."""
    return JsonResponse(error_body(code, message), status=status_code)


def handler400(request, exception=None):  # noqa: ARG001
    # Django's own refusals before any view runs: a Host not in ALLOWED_HOSTS, a malformed request.
    return json_error(400, "bad_request", "The request was malformed or not meant for this host.")


def handler403(request, exception=None):  # noqa: ARG001
    return json_error(403, "forbidden", "Not allowed.")


def handler404(request, exception=None):  # noqa: ARG001
    return json_error(404, "not_found", "Nothing at this URL.")


def handler500(request):  # noqa: ARG001
    return json_error(500, "internal_error", "The server failed; the request was not applied.")
