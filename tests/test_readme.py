"""`make run` as a new user starts it, and the README's walkthrough run against it.

The walkthrough is the ```sh block after `<!-- walkthrough -->` in README.md, executed as it
stands by bash (curl and jq) against `make run` on a free port, with local sandboxes and its
own SQLite file. Then Ctrl-C (SIGINT to the process group, as a terminal sends it).
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings

README = Path(settings.BASE_DIR) / "README.md"
START_TIMEOUT = 120.0

pytestmark = [pytest.mark.timeout(300)]


def walkthrough(text: str) -> str:
    """The ```sh block that follows the walkthrough marker."""
    found = re.search(r"<!-- walkthrough -->\s*```sh\n(.*?)\n```", text, re.DOTALL)
    assert found, "README.md has no walkthrough block"
    return found.group(1)


def json_objects(text: str) -> list:
    """Every JSON object printed (jq pretty-prints each over several lines)."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while (start := text.find("{", at)) >= 0:
        try:
            value, at = decoder.raw_decode(text, start)
            found.append(value)
        except ValueError:
            at = start + 1
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def make_run(tmp_path):
    for tool in ("make", "curl", "jq", "bash"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ANTHROPIC_", "E2B_"))}
    env.pop("REDIS_URL", None)
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        LOCAL_SANDBOX_ROOT=str(tmp_path / "sandboxes"),
        PYTHONUNBUFFERED="1",
    )
    process = subprocess.Popen(
        # -o: the virtualenv counts as installed (the test never installs into it).
        ["make", "-o", ".venv/.base", "run", "HOST=127.0.0.1", f"PORT={port}"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        # Its own process group, which gets the SIGINT a terminal's Ctrl-C sends; and SIGINT at
        # its default, even when the test runs where it is ignored (a background job).
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(line.decode() for line in process.stdout), daemon=True)
    reader.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        assert process.poll() is None, "".join(output)
        try:
            if httpx.get(f"{base}/api/schema/", timeout=2.0).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "make run did not serve in time:\n" + "".join(output)
        time.sleep(0.5)
    try:
        yield {"port": port, "process": process, "output": output, "reader": reader}
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


def test_readme_walkthrough_reaches_the_confirmed_switch_and_ctrl_c_ends_cleanly(make_run):
    process, output = make_run["process"], make_run["output"]
    script = walkthrough(README.read_text())
    ran = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env={**os.environ, "HOST": "127.0.0.1", "PORT": str(make_run["port"])},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "HTTP 409" in ran.stderr  # the unconfirmed switch
    printed = json_objects(ran.stdout)
    turns = [p for p in printed if "stopReason" in p]
    assert len(turns) == 2 and all(t["stopReason"] == "end_turn" for t in turns)
    quote = next(p for p in printed if "breakdown" in p)
    assert quote["taxUsd"] != "0.000000" and quote["capPercent"] is not None  # demo-max is on a flat-rate plan
    refused = next(p for p in printed if "code" in p)
    assert refused["code"] == "confirmation_required" and refused["quoteId"]
    confirmed = next(p for p in printed if "ok" in p)
    assert confirmed == {**confirmed, "ok": True, "modelId": "sonnet", "previousModelId": "haiku"}
    row = next(p for p in printed if "actualTaxUsd" in p)
    assert row["outcome"] == "applied" and row["quotedTaxUsd"] == refused["taxUsd"]
    assert row["actualTaxUsd"] is not None, "the next turn's usage did not reconcile the switch"
    cap = next(p for p in printed if "capUnits" in p)
    assert cap["plan"] == "max5" and cap["units"] != "0.000000"

    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C
    process.wait(timeout=60)
    make_run["reader"].join(timeout=10)
    log = "".join(output)
    assert "Error 130" not in log and "make: ***" not in log
    assert "local sandboxes and the emulator stopped" in log
    # Startup is quiet: no warning about SQLite and the covering index, and one line per
    # sandbox for the wait for its bridge instead of one per health poll.
    assert "W040" not in log
    assert "/health" not in log
    assert len(re.findall(r"bridge http://\S+ up after", log)) == 1
