"""The live API against its own OpenAPI schema, with schemathesis (the version pinned in
requirements/dev.txt): every check (tests/api/schemathesis.toml), a fixed seed, at least 1,000
generated requests, and not one failure: no 5xx, no answer outside the schema, no status or
content type it does not document, no schema-valid request refused, no invalid one accepted.

The service runs as a live server on PostgreSQL, as in production. Its sessions attach to one
real bridge (vm_bridge with the devstack reference agent and emulator), so that starting a
session, chatting, quoting and switching along the schema's links do what they do in
production rather than fail for want of a sandbox.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from django.test import override_settings

from sessions_app.sandboxes import local
from tests.conftest import client_for

SEED = 20261126
# Per operation and phase; 15 operations over four phases make well over MIN_CASES.
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "40"))
MIN_CASES = 1_000
CONFIG = Path(__file__).with_name("schemathesis.toml")

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="runs on PostgreSQL (DATABASE_URL), as in production"),
    pytest.mark.timeout(600),
]


@pytest.fixture
def shared_bridge(settings, tmp_path, monkeypatch):
    """One real bridge that every session of the run attaches to (the static provider)."""
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    settings.LOCAL_SANDBOX_ROOT = tmp_path
    sandbox = local.LocalProvider().start(session_key="schemathesis", user_id=0)
    settings.SANDBOX_PROVIDER = "static"
    settings.BRIDGE_STATIC_URL = sandbox.bridge_url
    settings.BRIDGE_STATIC_TOKEN = sandbox.bridge_token
    yield sandbox
    with override_settings(LOCAL_SANDBOX_ROOT=tmp_path):
        local.local_stack_stop()


def _schemathesis(base_url: str, token: str, workdir: Path) -> subprocess.CompletedProcess:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(CONFIG),
        "--no-color",
        "run",
        f"{base_url}/api/schema/",
        "--seed",
        str(SEED),
        "--max-examples",
        str(MAX_EXAMPLES),
        # One worker: the same requests in the same order for the same seed.
        "--workers",
        "1",
        "--header",
        f"Authorization: Token {token}",
        "--request-timeout",
        "30",
    ]
    # In a scratch directory: schemathesis keeps its cache in the working directory.
    return subprocess.run(command, capture_output=True, text=True, timeout=540, check=False, cwd=workdir)


def test_the_api_keeps_to_its_schema(live_server, transactional_db, shared_bridge, tmp_path):
    # The top plan: every picker model is the user's to choose, as the schema's enum says.
    client = client_for("schemathesis", "max20")
    token = client._credentials["HTTP_AUTHORIZATION"].split()[1]

    result = _schemathesis(live_server.url, token, tmp_path)

    output = result.stdout + result.stderr
    summary = output[output.find("SUMMARY") :]
    assert result.returncode == 0, summary + output[:20000]
    generated = re.search(r"(\d+) generated", summary)
    assert generated and int(generated.group(1)) >= MIN_CASES, summary
    assert "Errors:" not in summary and "Failures:" not in summary, summary
    print(summary)  # with -s: what ran
