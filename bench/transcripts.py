"""Transcript import beside ccusage: wall times side by side, and the totals' difference step by step.

ccusage (the comparison peer, pinned to CCUSAGE_VERSION) is found at $CCUSAGE or installed on
first use under var/ccusage (never committed) with npm: its launcher package and the native
binary for this machine, as `npm i ccusage@V @ccusage/ccusage-<platform>@V` would. It reads
copies of the transcripts laid out as Claude Code keeps them (`projects/<repo>/<session>.jsonl`).
"""

import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from bench import stack

LOGS = stack.ROOT.parent / "shared" / "data" / "claude-code-logs"
CCUSAGE_VERSION = "20.0.24"
CCUSAGE_HOME = stack.ROOT / "var" / "ccusage"
CCUSAGE_ARGS = ("daily", "--offline", "--json")
_ARCH = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}


def ccusage_launcher() -> Path:
    """The `ccusage` command as npm installs it (a node launcher that runs the native binary)."""
    if os.environ.get("CCUSAGE"):
        return Path(os.environ["CCUSAGE"])
    launcher = CCUSAGE_HOME / "node_modules" / ".bin" / "ccusage"
    if not launcher.exists() or _version(launcher) != CCUSAGE_VERSION:
        native = f"@ccusage/ccusage-{sys.platform}-{_ARCH.get(platform.machine().lower(), platform.machine())}"
        CCUSAGE_HOME.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--prefix", str(CCUSAGE_HOME), "--no-audit", "--no-fund",
             f"ccusage@{CCUSAGE_VERSION}", f"{native}@{CCUSAGE_VERSION}"],
            check=True, capture_output=True,
        )  # fmt: skip
    return launcher


def _version(command: Path) -> str:
    done = subprocess.run([str(command), "--version"], capture_output=True, text=True)
    return done.stdout.strip().removeprefix("ccusage ").removeprefix("v")


def ccusage_home() -> Path:
    """A throwaway Claude config folder holding copies of the transcripts."""
    home = Path(tempfile.mkdtemp(prefix="mk0r-ccusage-"))
    for path in sorted(LOGS.glob("*.jsonl")):
        repo, session = path.stem.split("__", 1)
        target = home / "projects" / repo / f"{session}.jsonl"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return home


def _timed(cmd: list[str], env: dict) -> tuple[float, str, str]:
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, cwd=stack.ROOT, timeout=600)
    return time.perf_counter() - started, done.stdout, done.stderr


# Two floors under any analysis of these files by this service, each a whole process doing only
# that (label, program): starting Django as every manage.py command does (this project's
# settings, no work), and decoding every line of the transcripts with orjson (no Django).
FLOORS = {
    "setup": ("`django.setup()` alone, as every `manage.py` command starts, no work", "import django; django.setup()"),
    "decode": (
        "orjson decoding every line, no Django, each result discarded",
        "import orjson, pathlib, sys\n"
        "for path in sorted(pathlib.Path(sys.argv[1]).rglob('*.jsonl')):\n"
        "    for line in path.read_bytes().splitlines():\n"
        "        try:\n"
        "            orjson.loads(line)\n"
        "        except orjson.JSONDecodeError:\n"
        "            pass\n",
    ),
}


def side_by_side(rounds: int) -> dict:
    """Each round: ccusage, the two FLOORS, the analysis (no --user), ccusage, the import storing
    every event into PostgreSQL as a new user. Every figure is a whole process's wall time."""
    launcher = ccusage_launcher()
    home = ccusage_home()
    cc_env = {**os.environ, "CLAUDE_CONFIG_DIR": str(home), "NO_COLOR": "1"}
    ours_env = stack._env()
    manage = [sys.executable, "manage.py", "import_claude_logs", str(LOGS), "--json"]
    runs: dict[str, list] = {"ccusage": [], "analysis": [], "store": [], **{name: [] for name in FLOORS}}
    try:
        for n in range(rounds):
            seconds, out, _ = _timed([str(launcher), *CCUSAGE_ARGS], cc_env)
            runs["ccusage"].append(seconds)
            cc = json.loads(out)
            for name, (_, code) in FLOORS.items():
                runs[name].append(_timed([sys.executable, "-c", code, str(LOGS)], ours_env)[0])
            seconds, out, err = _timed(manage, ours_env)
            runs["analysis"].append((seconds, _step_seconds(err)))
            report = json.loads(out)
            runs["ccusage"].append(_timed([str(launcher), *CCUSAGE_ARGS], cc_env)[0])
            user = f"bench-import-{n}"
            stack.manage("set_plan", user, "max20")
            seconds, out, err = _timed([*manage, "--user", user], ours_env)
            stored = json.loads(out)["stored"]
            if stored["created"] != report["requests"]["total"]:
                raise SystemExit(f"the import stored {stored}, expected every request")
            runs["store"].append((seconds, _step_seconds(err)))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return {"runs": runs, "ccusage": cc, "report": report, "version": _version(launcher)}


# The analysis run's stages in one process, each stage's CPU seconds (interpreter start is what
# the process has used before its first line runs). The same calls as `logs_import`, apart.
_STAGES = """
import json, os, sys, time
from collections import Counter
stages = {"python": time.process_time()}
import django
django.setup()
stages["django"] = time.process_time()
import orjson
from billing.usage.transcript_import import log_files, log_requests_parse
from billing.usage.transcript_import.replay import PriceBook, cyclic_gc_paused, session_replay
from billing.usage.transcript_import.report import ImportReport, Totals
with cyclic_gc_paused():
    sessions, stats = log_requests_parse(log_files([sys.argv[1]]))
    stages["parse"] = time.process_time()
    book, unknown, totals = PriceBook(), Counter(), Totals()
    replays = [session_replay(k, v, book=book, unknown=unknown) for k, v in sessions.items()]
    for replay in replays:
        totals.merge(replay.totals)
    stages["replay"] = time.process_time()
    replays = [r for r in replays if r.requests]
    report = ImportReport(sessions=replays, stats=stats, unknown_models=unknown, totals=totals)
    orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    stages["json"] = time.process_time()
print(json.dumps(stages))
"""
STAGES = ("python", "django", "parse", "replay", "json")


def stage_seconds(rounds: int) -> dict[str, float]:
    """Median CPU seconds of each stage of the analysis, over `rounds` fresh processes."""
    found: dict[str, list[float]] = {name: [] for name in STAGES}
    for _ in range(rounds):
        done = subprocess.run(
            [sys.executable, "-c", _STAGES, str(LOGS)],
            env=stack._env(), capture_output=True, text=True, check=True, cwd=stack.ROOT,
        )  # fmt: skip
        marks = json.loads(done.stdout)
        previous = 0.0
        for name in STAGES:
            found[name].append(marks[name] - previous)
            previous = marks[name]
    return {name: statistics.median(values) for name, values in found.items()}


def _step_seconds(stderr: str) -> list[float]:
    """The seconds of each step from the command's one-line summary (stderr is not a terminal)."""
    return [float(s) for s in re.findall(r"in ([0-9.]+) s", stderr)]


def store_paths_in_process(rounds: int) -> dict:
    """`usage_events_store` by COPY and by bulk_create on the same rows, alternating, each in a
    transaction rolled back afterwards (needs Django set up, on the bench's PostgreSQL). The
    foreign keys are checked when the transaction commits (Django's are deferred): each run's
    checks are fired before the rollback, and timed apart ("fk_checks")."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from billing.usage.transcript_import import logs_import, usage_events_store

    report = logs_import([LOGS])
    user = get_user_model().objects.create(username="bench-store-paths")
    seconds: dict[str, list[float]] = {"copy": [], "bulk_create": [], "fk_checks": []}
    for _ in range(rounds):
        for name in ("copy", "bulk_create"):
            with transaction.atomic(), connection.cursor() as cursor:
                started = time.perf_counter()
                usage_events_store(report=report, user=user, copy=name == "copy")
                stored = time.perf_counter()
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                seconds[name].append(stored - started)
                seconds["fk_checks"].append(time.perf_counter() - stored)
                transaction.set_rollback(True)
    return {name: statistics.median(values) for name, values in seconds.items()}


def counting_steps() -> dict:
    """Our prices applied with ccusage's counting, one rule at a time. Each entry keeps its line
    with the largest output, as ours does: the rules differ only in what counts as one entry."""
    from billing.catalog.cost_engine import Usage, usage_cost
    from billing.usage.transcript_import import PriceBook

    book = PriceBook()
    by_ids: dict[tuple, tuple] = {}  # lines with a request id: ccusage's key (message id, request id)
    by_message: dict[str, tuple] = {}  # lines without one: our key, the message id
    main_lines: dict[tuple, tuple] = {}  # main-chain lines without one: only exact repeats merged

    def keep(into: dict, key, entry: tuple) -> None:
        current = into.get(key)
        if current is None:
            into[key] = entry
        elif entry[1]["output_tokens"] >= current[1]["output_tokens"]:
            into[key] = (current[0], entry[1], current[2])

    for path in sorted(LOGS.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            d = json.loads(line)
            message = d.get("message") or {}
            if d.get("type") != "assistant" or message.get("model") in (None, "<synthetic>"):
                continue
            entry = (message["model"], message["usage"], datetime.fromisoformat(d["timestamp"]))
            if d.get("requestId"):
                keep(by_ids, (message.get("id"), d["requestId"]), entry)
                continue
            keep(by_message, message.get("id"), entry)
            if not d.get("isSidechain"):
                keep(main_lines, (message.get("id"), d.get("sessionId"), d["timestamp"]), entry)
    on_main = {message_id for message_id, _, _ in main_lines}
    side_only = {key: entry for key, entry in by_message.items() if key not in on_main}

    def total(entries) -> Decimal:
        return sum(
            (usage_cost(usage=Usage.from_anthropic(raw), prices=book.lookup(model, at)[2]).total
             for model, raw, at in entries),
            Decimal(0),
        )  # fmt: skip

    return {
        "ids_entries": len(by_ids) + len(by_message),
        "ids": total([*by_ids.values(), *by_message.values()]),
        "lines_entries": len(by_ids) + len(side_only) + len(main_lines),
        "lines": total([*by_ids.values(), *side_only.values(), *main_lines.values()]),
    }


def ccusage_total(cc: dict) -> tuple[Decimal, Counter]:
    by_model: Counter = Counter()
    for day in cc["daily"]:
        for row in day["modelBreakdowns"]:
            by_model[row["modelName"]] += Decimal(str(row["cost"]))
    return Decimal(str(cc["totals"]["totalCost"])), by_model
