"""The OpenAPI schema is compared, byte for byte, with the snapshot in openapi_snapshot.yaml.

Moving code between modules must not change what clients see. A deliberate API change
regenerates the snapshot in the same commit:

    DJANGO_SETTINGS_MODULE=mk0r.settings.test .venv/bin/python manage.py spectacular \
        --file tests/web/openapi_snapshot.yaml
"""

import difflib
import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

SNAPSHOT = Path(__file__).with_name("openapi_snapshot.yaml")


def test_schema_matches_the_snapshot(tmp_path):
    out = tmp_path / "schema.yaml"
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--file", str(out)],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "mk0r.settings.test"},
    )
    assert result.returncode == 0, result.stderr + result.stdout
    generated, expected = out.read_bytes(), SNAPSHOT.read_bytes()
    if generated != expected:
        diff = difflib.unified_diff(
            expected.decode().splitlines(),
            generated.decode().splitlines(),
            "openapi_snapshot.yaml",
            "generated",
            lineterm="",
        )
        raise AssertionError("The OpenAPI schema changed:\n" + "\n".join(list(diff)[:80]))
