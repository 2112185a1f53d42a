"""Input that once raised a 500: every answer is a 4xx with the API's error shape."""

import uuid

import pytest
from django.urls import get_resolver

from sessions_app.models import AgentSession

pytestmark = pytest.mark.django_db

KEY = "4b1f5a4e-0000-4000-8000-000000000000"
# Every DRF endpoint that takes a body, with a session key where its path has one.
BODY_PATHS = [
    "/api/auth/token",
    "/api/chat/sessions",
    f"/api/chat/sessions/{KEY}/resume",
    "/api/chat",
    "/api/chat/model",
    "/api/chat/model/quote",
]


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:300])
    body = response.json()
    assert set(body) >= {"code", "message", "extra"} and body["code"] == code, body
    return body


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# 30,000 deep is 60 KB: still under the body limit.
@pytest.mark.parametrize("depth", [1_000, 30_000])
@pytest.mark.parametrize("path", BODY_PATHS)
def test_json_nested_too_deeply_is_a_400(pro_client, anon_client, path, depth):
    for client in (pro_client, anon_client):
        response = client.generic("POST", path, _nested(depth), content_type="application/json")
        if client is anon_client and path != "/api/auth/token":
            _error(response, 401, "not_authenticated")
            continue
        body = _error(response, 400, "invalid_request")
        assert "nested too deeply" in body["message"]


def test_deep_but_parseable_json_is_an_ordinary_validation_error(pro_client):
    response = pro_client.generic(
        "POST", "/api/chat/model", b'{"sessionKey": ' + _nested(500) + b"}", content_type="application/json"
    )
    _error(response, 400, "invalid_request")


@pytest.mark.parametrize("suffix", ["", "/switches", "/resume", "/cache-health"])
@pytest.mark.parametrize("key", ["%00", "a%00b", "not-a-uuid", f"{KEY}%00", "%F0%9F%92%A9", KEY.upper()[:-1]])
def test_a_key_that_is_not_a_uuid_is_404_on_every_session_path(pro_client, suffix, key, django_assert_num_queries):
    method = "post" if suffix == "/resume" else "get"
    # Not even the token is looked up: the URL does not match.
    with django_assert_num_queries(0):
        response = getattr(pro_client, method)(f"/api/chat/sessions/{key}{suffix}")
    _error(response, 404, "not_found")
    if not suffix:
        _error(pro_client.delete(f"/api/chat/sessions/{key}"), 404, "not_found")


def _routes(resolver, prefix=""):
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        yield from _routes(entry, route) if hasattr(entry, "url_patterns") else [route]


def test_every_path_with_a_key_takes_only_a_uuid():
    keyed = [route for route in _routes(get_resolver()) if "key>" in route]
    assert len(keyed) >= 4
    assert all("<uuid:key>" in route for route in keyed), keyed


@pytest.mark.parametrize("body", [b"", b"{}"])
def test_a_session_starts_with_no_body_or_an_empty_object(pro_client, bridge, body):
    response = pro_client.generic("POST", "/api/chat/sessions", body, content_type="application/json")
    assert response.status_code == 201, response.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"modelId": "opus"}', "modelId"),
        (b'{"cwd": "/etc", "x": 1}', "cwd"),
        (b"[]", "non_field_errors"),
        (b'"start"', "non_field_errors"),
        (b"1", "non_field_errors"),
        (b"null", "non_field_errors"),
        (b"{", None),
    ],
)
def test_a_malformed_session_start_body_starts_nothing(pro_client, bridge, body, field):
    response = pro_client.generic("POST", "/api/chat/sessions", body, content_type="application/json")
    error = _error(response, 400, "invalid_request")
    if field is not None:
        assert field in error["extra"]["fields"], error
    assert bridge.calls == [] and not AgentSession.objects.exists()


def test_an_unknown_session_uuid_is_still_session_not_found(pro_client):
    _error(pro_client.get(f"/api/chat/sessions/{uuid.uuid4()}/cache-health"), 404, "session_not_found")


@pytest.mark.parametrize("query", ["days=", "days=x", "worst=", "days=0"])
def test_an_empty_or_malformed_query_number_is_400(pro_client, query):
    path = "/api/billing/quote-accuracy" if "worst" in query else "/api/billing/cache-health"
    _error(pro_client.get(f"{path}?{query}"), 400, "invalid_request")
