"""What a transcript import loads before it reads a line: Django and billing, not DRF's views or
Celery's app (each a tenth of a second or more of every run; see docs/PERFORMANCE.md)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

PROBE = """
import json, sys
import django
django.setup()
import billing.management.commands.import_claude_logs
print(json.dumps(sorted(sys.modules)))
"""


def test_the_import_command_loads_neither_drf_views_nor_celery():
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "mk0r.settings.base"},
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = set(json.loads(done.stdout))
    assert "billing.usage.transcript_import.replay" in loaded  # the probe did load the import
    heavy = {"rest_framework.views", "rest_framework.response", "requests", "redis", "celery.app.base"}
    assert not heavy & loaded
