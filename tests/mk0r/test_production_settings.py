"""Production settings: every secret is required, and `check --deploy` is clean."""

import json
import os
import secrets
import subprocess
import sys

import pytest
from django.conf import settings

REQUIRED = {
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
    "DJANGO_ALLOWED_HOSTS": "mk0r.example.com",
    "DATABASE_URL": "postgres://mk0r:secret@db.internal:5432/mk0r",
    "REDIS_URL": "redis://redis.internal:6379/0",
    "PUBLIC_BASE_URL": "https://mk0r.example.com",
    "E2B_API_KEY": "e2b_test_key",
}


def _manage(*args: str, env: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    # A clean environment: nothing from this machine (or a .env file's defaults) may fill a gap.
    base = {k: os.environ[k] for k in ("PATH", "LANG", "HOME") if k in os.environ}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env={**base, "DJANGO_SETTINGS_MODULE": "mk0r.settings.production", "STATIC_ROOT": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean(tmp_path):
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=REQUIRED, tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_each_secret_is_required(tmp_path, missing):
    env = {k: v for k, v in REQUIRED.items() if k != missing}
    result = _manage("check", env=env, tmp_path=tmp_path)
    assert result.returncode != 0
    assert missing in result.stderr


def test_a_blank_secret_is_refused(tmp_path):
    result = _manage("check", env={**REQUIRED, "DJANGO_SECRET_KEY": "  "}, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_production_values(tmp_path):
    code = (
        "from django.conf import settings as s; import json; print(json.dumps({"
        "'debug': s.DEBUG, 'eager': s.CELERY_TASK_ALWAYS_EAGER, 'broker': s.CELERY_BROKER_URL,"
        "'static': s.STORAGES['staticfiles']['BACKEND'], 'finders': s.WHITENOISE_USE_FINDERS,"
        "'formatter': s.LOGGING['handlers']['console']['formatter'], 'exempt': s.SECURE_REDIRECT_EXEMPT,"
        "'cache': s.CACHES['default']['BACKEND'], 'middleware': s.MIDDLEWARE}))"
    )
    result = _manage("shell", "-c", code, env=REQUIRED, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values["debug"] is False and values["eager"] is False
    assert values["broker"] == REQUIRED["REDIS_URL"]
    assert values["static"] == "mk0r.static_storage.StaticFilesStorage"  # WhiteNoise's, with ES module imports
    assert values["finders"] is False
    assert values["formatter"] == "json"
    assert values["cache"].endswith("RedisCache")
    assert {"^healthz$", "^readyz$"} <= set(values["exempt"])
    assert values["middleware"][0] == "mk0r.request_id.RequestIdMiddleware"
    assert "mk0r.middleware.StaticFilesMiddleware" in values["middleware"]  # WhiteNoise, async-capable


def test_probes_are_not_redirected_to_https(tmp_path):
    code = (
        "from django.test import Client; c = Client(HTTP_HOST='mk0r.example.com');"
        "print(c.get('/healthz').status_code, c.get('/api/chat/sessions').status_code)"
    )
    result = _manage("shell", "-c", code, env=REQUIRED, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].split() == ["200", "301"]
