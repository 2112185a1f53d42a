"""/healthz answers while the process runs; /readyz checks the database and Redis."""

import os

import pytest
from django.db import OperationalError
from django.test import Client


def test_healthz_needs_no_database(client):
    # No django_db mark: pytest-django makes any database access fail this test.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_a_probe_answers_another_method_with_the_api_error_shape(path):
    response = Client(enforce_csrf_checks=True).post(path)
    assert response.status_code == 405 and response["Allow"] == "GET"
    assert response.json()["code"] == "method_not_allowed" and set(response.json()) == {"code", "message", "extra"}


@pytest.mark.django_db
def test_readyz_ok_without_redis(client, settings):
    settings.REDIS_URL = ""
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": {"ok": True}}, "failed": []}


@pytest.mark.django_db
def test_readyz_names_the_database_when_it_fails(client, settings, monkeypatch):
    settings.REDIS_URL = ""

    def broken():
        raise OperationalError("connection refused")

    monkeypatch.setattr("mk0r.health._database", broken)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["database"]
    assert body["checks"]["database"] == {"ok": False, "error": "OperationalError"}
    assert "connection refused" not in response.content.decode()


@pytest.mark.django_db
def test_readyz_names_redis_when_it_is_unreachable(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["redis"]
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["redis"] == {
        "ok": False,
        "error": "ConnectionError",
        "effect": "Rate limits are not enforced while Redis is down.",
    }
    # The body is public: where Redis lives is not in it.
    assert "127.0.0.1" not in response.content.decode() and ":1" not in response.content.decode()


@pytest.mark.redis
@pytest.mark.django_db
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (REDIS_URL)")
def test_readyz_with_real_redis(client, settings):
    settings.REDIS_URL = os.environ["REDIS_URL"]
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert set(response.json()["checks"]) == {"database", "redis"}


def test_probes_are_get_only(client):
    assert client.post("/healthz").status_code == 405
