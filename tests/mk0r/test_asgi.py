"""The ASGI application: nothing in it forces a request onto Django's one synchronous thread."""

import warnings
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync, iscoroutinefunction
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.test import AsyncClient
from django.urls import get_resolver
from django.utils.module_loading import import_string

from mk0r.django_middleware import DJANGO_PATHS
from tests.asgi_server import _view_threads_stop


def test_every_middleware_runs_in_async_mode():
    # A synchronous-only middleware would run every request, chat turns included, through one thread.
    for path in settings.MIDDLEWARE:
        assert getattr(import_string(path), "async_capable", False), path


def test_djangos_middleware_runs_on_the_event_loop():
    # Django's own classes would run each hook on a thread kept for the request (a chat turn's
    # whole length); mk0r.django_middleware's subclasses stand in for every one of them.
    installed = set(settings.MIDDLEWARE)
    assert not any(path.startswith("django.") for path in installed)
    assert set(DJANGO_PATHS) <= installed


def test_every_api_view_is_asynchronous():
    def views(patterns, prefix=""):
        for pattern in patterns:
            if hasattr(pattern, "url_patterns"):
                yield from views(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                yield prefix + str(pattern.pattern), pattern.callback

    api = [(route, view) for route, view in views(get_resolver().url_patterns) if route.startswith("api/")]
    assert len(api) > 10
    for route, view in api:
        if route.startswith("api/schema") or route.startswith("api/docs"):
            continue  # documentation pages: rare, and fine on the synchronous thread
        assert iscoroutinefunction(view), route


def test_static_files_are_served_on_the_event_loop():
    async def fetch():
        response = await AsyncClient().get("/static/web/picker.css")
        return response, b"".join([chunk async for chunk in response])

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Django warns when it must read a body on its thread
        response, body = async_to_sync(fetch)()
    assert response.status_code == 200
    assert body == (Path(settings.BASE_DIR) / "web" / "static" / "web" / "picker.css").read_bytes()


def test_request_id_and_body_limit_under_asgi():
    too_big = b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    response = async_to_sync(AsyncClient().post)("/api/chat", data=too_big, content_type="application/json")
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"
    assert response.headers["X-Request-ID"]


@pytest.mark.django_db(transaction=True)
def test_admin_login_under_asgi_saves_the_session_and_checks_csrf():
    # Django's middleware hooks run on the loop; the session's save runs on a view thread.
    get_user_model().objects.create_superuser("asgi-admin", "a@example.com", "pw-asgi-admin")

    async def log_in():
        client = AsyncClient(enforce_csrf_checks=True)
        page = await client.get("/admin/login/")
        token = page.cookies["csrftoken"].value
        refused = await client.post("/admin/login/", {"username": "asgi-admin", "password": "pw-asgi-admin"})
        form = {"username": "asgi-admin", "password": "pw-asgi-admin", "csrfmiddlewaretoken": token}
        logged_in = await client.post("/admin/login/", form)
        index = await client.get("/admin/")
        return page, refused, logged_in, index

    try:
        page, refused, logged_in, index = async_to_sync(log_in)()
    finally:
        _view_threads_stop()  # and their database connections, before the test database goes
    assert page.status_code == 200 and page["X-Frame-Options"] == "DENY"
    assert refused.status_code == 403
    assert logged_in.status_code == 302 and "sessionid" in logged_in.cookies
    assert index.status_code == 200
    assert Session.objects.count() == 1
