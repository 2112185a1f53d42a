"""manage.py import_claude_logs: its report, storing per user, errors and progress."""

import fcntl
import io
import json
import os
import pty
import struct
import termios
import threading
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from billing.models import UsageEvent
from billing.usage.transcript_import import logs_import
from tests.billing.usage.transcript_lines import SID, SONNET, T0, assistant, chat, import_command, s, write

pytestmark = pytest.mark.django_db


def test_command_json_has_the_summary_and_writes_nothing(tmp_path):
    chat(tmp_path)
    data = json.loads(import_command(tmp_path, "--json"))
    assert {"totalUsd", "sessions", "requests", "switches", "hitRate", "predictionError"} <= set(data)
    assert data["requests"]["total"] == 4 and data["switches"]["count"] == 1
    assert data["sessions"][0]["sessionId"] == SID
    assert data["predictionError"]["withinOnePercent"] == 3
    assert Decimal(data["totalUsd"]) == sum(Decimal(s["totalUsd"]) for s in data["sessions"])
    assert "stored" not in data
    assert not UsageEvent.objects.exists()


def test_command_text_lists_sessions_switches_and_totals(tmp_path):
    chat(tmp_path)
    text = import_command(tmp_path)
    assert SID in text and "switch claude-haiku-4-5 -> claude-sonnet-4-6" in text
    assert "1h writes $" in text and "predicted within 1%" in text


def test_command_text_puts_a_negative_tax_sign_before_the_dollar(tmp_path):
    # Sonnet's 5-minute cache is cold after 10 minutes: staying would rewrite the prefix at
    # Sonnet's rate, switching writes it at Haiku's, so the switch saves money.
    write(
        tmp_path / "a.jsonl",
        [
            assistant("req_1", at=T0, model=SONNET, w5=20_000, out=10),
            assistant("req_2", at=T0 + s(600), w5=20_100, out=10),
        ],
    )
    (switch,) = logs_import([tmp_path]).switches
    assert switch.tax_usd < 0
    text = import_command(tmp_path)
    assert f"tax -${-switch.tax_usd}" in text and "$-" not in text


def test_command_with_user_stores_events_once(tmp_path):
    chat(tmp_path)
    owner = get_user_model().objects.create(username="importer")
    first = json.loads(import_command(tmp_path, "--user", "importer", "--json"))
    assert first["stored"] == {"user": "importer", "created": 4, "alreadyThere": 0}
    events = UsageEvent.objects.filter(user=owner).order_by("occurred_at")
    assert [e.record_id for e in events] == ["req_1", "req_2", "req_3", "req_4"]
    e = events[0]
    assert (e.session_key, e.source, e.request_id, e.model) == (SID, "import", "req_1", "claude-haiku-4-5")
    assert e.cost_usd == Decimal("0.043203") and e.cache_write_1h_tokens == 20_000 and e.output_tokens == 640
    assert e.miss_cause == "first_turn" and events[1].predicted_read_tokens == 20_000
    snapshot = list(UsageEvent.objects.values())
    again = json.loads(import_command(tmp_path, "--user", "importer", "--json"))
    assert again["stored"] == {"user": "importer", "created": 0, "alreadyThere": 4}
    assert list(UsageEvent.objects.values()) == snapshot


def test_command_errors(tmp_path):
    with pytest.raises(CommandError, match="no user"):
        import_command(tmp_path, "--user", "nobody")
    with pytest.raises(CommandError, match="no such file"):
        import_command(tmp_path / "missing")
    with pytest.raises(CommandError, match="no \\*.jsonl"):
        import_command(tmp_path)


def test_another_users_import_of_the_same_logs_is_all_new(tmp_path):
    chat(tmp_path)
    model = get_user_model()
    alice, bob = model.objects.create(username="alice"), model.objects.create(username="bob")
    assert json.loads(import_command(tmp_path, "--user", "alice", "--json"))["stored"]["created"] == 4
    stored = json.loads(import_command(tmp_path, "--user", "bob", "--json"))["stored"]
    assert stored == {"user": "bob", "created": 4, "alreadyThere": 0}
    assert UsageEvent.objects.filter(user=alice).count() == UsageEvent.objects.filter(user=bob).count() == 4
    again = json.loads(import_command(tmp_path, "--user", "alice", "--json"))["stored"]
    assert (again["created"], again["alreadyThere"]) == (0, 4)


def test_progress_is_one_summary_line_when_stderr_is_not_a_terminal(tmp_path):
    chat(tmp_path)
    get_user_model().objects.create(username="importer")
    err = io.StringIO()
    call_command("import_claude_logs", str(tmp_path), "--user", "importer", stdout=io.StringIO(), stderr=err)
    (line,) = err.getvalue().splitlines()
    assert line.startswith("import_claude_logs: read 1 files") and "stored 4 new usage events" in line
    assert "\r" not in err.getvalue()


@pytest.mark.parametrize("columns", [0, 30, 200])
def test_progress_shows_both_steps_on_a_terminal_of_any_width(tmp_path, columns):
    chat(tmp_path)
    get_user_model().objects.create(username="importer")
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    seen = bytearray()
    reader = threading.Thread(target=_drain, args=(master, seen))
    reader.start()
    try:
        with open(slave, "w", closefd=False) as terminal:
            call_command(
                "import_claude_logs", str(tmp_path), "--user", "importer", stdout=io.StringIO(), stderr=terminal
            )
    finally:
        os.close(slave)
        reader.join(timeout=5)
        os.close(master)
    text = seen.decode(errors="replace")
    assert "reading transcripts" in text and "storing usage events" in text
    assert text.count("100%") == 2  # each bar reached its end
    assert "import_claude_logs:" not in text  # the summary line is for logs and pipes


def _drain(fd: int, into: bytearray) -> None:
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the terminal's other side closed
            return
        if not chunk:
            return
        into.extend(chunk)
