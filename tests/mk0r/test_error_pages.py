"""Django's own error answers (outside DRF) have the API's error shape too."""

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import include, path


def _boom(request):
    raise RuntimeError("boom")


def _denied(request):
    raise PermissionDenied


urlpatterns = [path("boom", _boom), path("denied", _denied), path("", include("mk0r.urls"))]
handler400 = "mk0r.errors.handler400"
handler403 = "mk0r.errors.handler403"
handler404 = "mk0r.errors.handler404"
handler500 = "mk0r.errors.handler500"


@pytest.mark.parametrize(
    ("path", "extra", "status", "code"),
    [
        ("/api/chat/sessions", {"HTTP_HOST": "evil.example"}, 400, "bad_request"),
        ("/denied", {}, 403, "forbidden"),
        ("/no/such/endpoint", {}, 404, "not_found"),
        ("/boom", {}, 500, "internal_error"),
    ],
)
def test_errors_outside_drf_are_json(settings, path, extra, status, code):
    settings.ROOT_URLCONF = __name__
    settings.DEBUG = False
    response = Client(raise_request_exception=False).get(path, **extra)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == code and set(response.json()) == {"code", "message", "extra"}
