"""Usage ingestion and transcript import: events/s into PostgreSQL through the real endpoint,
and the import's wall time beside ccusage's, with both totals.

    .venv/bin/python bench/ingest.py [--clients 4] [--events 1200] [--rounds 5] [--write-docs]

Ingestion: gunicorn on PostgreSQL, `--clients` concurrent relays, each posting signed batches
(HMAC, nonce, timestamp, exactly as vm_bridge does) of real requests from the sample logs
into its own session, once with one record per batch and once with 50.

Import (bench/transcripts.py): `manage.py import_claude_logs` on every transcript in
../shared/data/claude-code-logs, without and with storing, interleaved with runs of ccusage
(installed under var/ccusage on first use) on copies of the same files and with the two floors
under any analysis of them here (Django's start alone, decoding the lines alone).
"""

import argparse
import json
import os
import platform
import secrets
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from statistics import median

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import stack, transcripts  # noqa: E402
from bench.docs import write_section  # noqa: E402
from billing.money import usd_display  # noqa: E402

LOGS = transcripts.LOGS
BATCHES = (1, 50)


def _django() -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "mk0r.settings.base"
    os.environ["DATABASE_URL"] = stack.DATABASE_URL
    os.environ["REDIS_URL"] = stack.REDIS_URL
    import logging

    import django

    django.setup()
    logging.getLogger("httpx").setLevel(logging.WARNING)


# --- ingestion through the endpoint ---


def _sample_requests(count: int) -> list:
    """Real main-chain requests from the logs, in order (their usage and models)."""
    from billing.usage.transcript_import import log_files, log_requests_parse

    sessions, _ = log_requests_parse(log_files([LOGS]))
    found = [r for requests in sessions.values() for r in requests if not r.is_sidechain and r.counted]
    return found[:count]


def _records(requests: list, session_id: str, start: datetime, prefix: str) -> list[dict]:
    return [
        {
            "id": f"{prefix}{i}_{r.record_id}",
            "kind": "request",
            "source": "transcript",
            "sessionId": session_id,
            "requestId": r.request_id,
            "messageId": r.message_id,
            "model": r.model,
            "timestamp": (start + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"),
            "isSidechain": False,
            "usage": r.usage,
        }
        for i, r in enumerate(requests)
    ]


def _post(http: httpx.Client, records: list[dict]) -> None:
    from sessions_app.relay_auth import relay_signature

    body = json.dumps({"sandboxId": "static", "records": records}).encode()
    ts, nonce = str(int(time.time())), secrets.token_hex(16)
    response = http.post(
        "/api/internal/usage",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Mk0r-Sandbox": "static",
            "X-Mk0r-Timestamp": ts,
            "X-Mk0r-Nonce": nonce,
            "X-Mk0r-Signature": relay_signature(key=stack.BRIDGE_TOKEN, timestamp=ts, nonce=nonce, body=body),
        },
    )
    if response.status_code != 202 or response.json()["accepted"] != len(records):
        raise SystemExit(f"ingest failed: {response.status_code} {response.text[:300]}")


def ingest(service_url: str, token: str, *, clients: int, events: int, batch: int, sample: list) -> dict:
    api = httpx.Client(base_url=service_url, headers={"Authorization": f"Token {token}"}, timeout=60)
    sessions = [stack.started_session(api.post("/api/chat/sessions")) for _ in range(clients)]
    per_client = events // clients
    start = datetime.now(UTC) - timedelta(days=2)
    work = [
        _records(sample[i * per_client : (i + 1) * per_client], s["sessionId"], start, f"b{batch}c{i}_")
        for i, s in enumerate(sessions)
    ]
    barrier = threading.Barrier(clients + 1)

    def client(records: list[dict]) -> None:
        http = httpx.Client(base_url=service_url, timeout=60)
        barrier.wait()
        for n in range(0, len(records), batch):
            _post(http, records[n : n + batch])

    threads = [threading.Thread(target=client, args=(w,)) for w in work]
    for thread in threads:
        thread.start()
    barrier.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    total = sum(len(w) for w in work)
    return {"events": total, "seconds": elapsed, "per_second": total / elapsed, "load": stack.load_average()}


def ingest_section(rows: dict, clients: int) -> str:
    ingest_rows = "\n".join(
        f"| {batch} | {r['events']} | {r['seconds']:.2f} s | {r['per_second']:,.0f} |" for batch, r in rows.items()
    )
    return f"""`bench/ingest.py`, Python {platform.python_version()} on {platform.machine()} ({date.today()}).

Ingestion: `POST /api/internal/usage` through the production server as `make serve` runs it
(gunicorn with uvicorn workers, docker/gunicorn.conf.py) on PostgreSQL, {clients} relays at once,
each into its own session, signed like vm_bridge (HMAC, nonce in Redis, timestamp window). Each
event is validated, priced at its own time, fed to the session's persisted cache tracker (row
lock), given a miss cause and stored, all in one transaction per batch. A batch costs the same
dozen queries whatever its size (the session lock, known ids, the tracker state read and written
once, one bulk insert, the waiting-switch lookup; prices come from the per-process catalog
cache), so the relay's batching is what buys throughput: a one-record batch pays the whole
request (auth by signature, nonce in Redis, transaction) for one event.

| records per batch | events | time | events/s |
|---|---|---|---|
{ingest_rows}
"""


# --- transcript import beside ccusage ---


def _spread(ours: list[float], theirs: list[float]) -> str:
    """The lowest and highest of the rounds' own ratios (each run over its round's ccusage run)."""
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    return f"{min(ratios):.2f}x–{max(ratios):.2f}x"


def _floors_verdict(*, setup: float, decode: float, replay: float, store: float, cc: float) -> str:
    """What each goal leaves for its run's own work once Django has started, and whether that work
    fits there on one CPU or, split perfectly, on two."""
    text = (
        f"The floors: starting Django alone takes {setup:.2f} s, {setup / cc:.2f}x ccusage's whole run;"
        f" decoding the lines alone {decode:.2f} s, and the replay needs {replay:.2f} s of CPU on top."
        " Every price comes from the catalog through Django: no request is priced before it has started."
    )
    for run, goal, work in (
        ("the analysis", 1, decode + replay),
        ("the import that stores", 3, decode + replay + store),
    ):
        left = goal * cc - setup
        text += f" For {run}, {goal}x leaves {max(left, 0):.2f} s after the start for {work:.2f} s of work"
        if work <= left:
            text += ": within reach."
        elif work / 2 <= left:
            text += f": out of reach in one process; {work / 2:.2f} s if it were split perfectly over two CPUs."
        else:
            text += f", {work / 2:.2f} s even split perfectly over two CPUs: out of reach."
    return text


def import_section(side: dict, stores: dict, steps: dict, stages: dict) -> str:
    runs, report = side["runs"], side["report"]
    analysis = [s for s, _ in runs["analysis"]]
    store = [s for s, _ in runs["store"]]
    # A round runs ccusage before the floors and the analysis, and again before the storing import.
    cc_before_analysis, cc_before_store = runs["ccusage"][0::2], runs["ccusage"][1::2]
    read_a = median([steps_[0] for _, steps_ in runs["analysis"]])
    read_s = median([steps_[0] for _, steps_ in runs["store"]])
    stored = median([steps_[1] for _, steps_ in runs["store"]])
    cc = median(runs["ccusage"])
    median_a = median(analysis)
    theirs, _ = transcripts.ccusage_total(side["ccusage"])
    ours = Decimal(report["totalUsd"])
    files, lines, requests = report["files"], report["lines"], report["requests"]["total"]
    rounds = len(analysis)
    stage_rows = "\n".join(
        f"| {label} | {stages[name]:.2f} s |"
        for name, label in (
            ("python", "starting the interpreter"),
            ("django", "`django.setup()`: settings, every installed app's models, admin autodiscovery"),
            ("parse", "reading the files: orjson per line, one request per API call, copies counted once"),
            ("replay", "the replay: prices from the catalog, each request priced and run through the cache tracker"),
            ("json", "the JSON report"),
        )
    )
    step_rows = "\n".join(
        f"| {label} | {entries} | {figure} |"
        for label, entries, figure in (
            (
                "ours: one entry per API request (request id; a retry under a stale id apart;"
                " a resumed session's copies once), its largest output",
                f"{requests:,}",
                usd_display(ours),
            ),
            (
                "ccusage's key (message id, request id): a response one gateway relabelled with"
                " several message ids counts once per id",
                f"{steps['ids_entries']:,}",
                f"{usd_display(steps['ids'])} ({usd_display(steps['ids'] - ours, signed=True)})",
            ),
            (
                "main-chain lines without a request id are not de-duplicated (only exact repeats:"
                " same message id, session and time)",
                f"{steps['lines_entries']:,}",
                f"{usd_display(steps['lines'])} ({usd_display(steps['lines'] - steps['ids'], signed=True)})",
            ),
            (
                "ccusage",
                "",
                f"{usd_display(theirs)} ({usd_display(theirs - steps['lines'], signed=True)} not attributed)",
            ),
        )
    )
    setup, decode = median(runs["setup"]), median(runs["decode"])
    timed = [(f"floor: {label}", runs[name], cc_before_analysis, "") for name, (label, _) in transcripts.FLOORS.items()]
    timed += [
        ("`import_claude_logs --json`: the analysis, no storing", analysis, cc_before_analysis, "≤ 1x"),
        ("`import_claude_logs --user U --json`: stored in PostgreSQL", store, cc_before_store, "≤ 3x"),
    ]
    timed_rows = "\n".join(
        f"| {label} | {median(ours):.2f} s | {median(ours) / cc:.2f}x | {_spread(ours, theirs)} | {goal} |"
        for label, ours, theirs, goal in timed
    )
    return f"""Transcript import of the {files} sample sessions ({lines:,} lines, {requests:,} requests) beside
ccusage {side["version"]} (`ccusage {" ".join(transcripts.CCUSAGE_ARGS)}` on copies of the files laid out as
`projects/<repo>/<session>.jsonl`, node {_node()}). Every figure is a whole process's wall time, the
median of {rounds} rounds. A round runs ccusage, the two floors, the analysis, ccusage again and
the import that stores, one after the other, so both sides share the machine's load; a ratio is
our median over ccusage's, and its spread the lowest and highest of the rounds' own ratios (each
run over the round's ccusage run before it). The floors are what any analysis by this service
does before its own work: two processes that do only that.

| | wall time | ratio to ccusage | spread over rounds | goal |
|---|---|---|---|---|
| ccusage (its npm launcher and native binary) | {cc:.2f} s | | | |
{timed_rows}

What our figures include: reading and replaying the transcripts ({read_a:.2f} s in the analysis
run, {read_s:.2f} s in the storing run, as the command's summary line reports: orjson per line,
one request per API call, every request priced at its own time and run through the cache
tracker); with `--user`, storing {requests:,} usage events ({stored:.2f} s: one COPY into
PostgreSQL under the user's row lock, idempotent per user); the rest of the analysis run
({median_a - read_a:.2f} s) is starting Python and Django and printing the JSON report.
ccusage reads the same files with one thread per CPU, prices them and prints its daily table.
On the same rows in one process (median of {rounds} rolled-back runs) storing takes {stores["copy"]:.2f} s by COPY and
{stores["bulk_create"]:.2f} s by `bulk_create`, which spends most of it preparing every field
of every row in Python: hence the COPY. PostgreSQL then checks each row's two foreign keys (its
user, its price version) as the transaction commits: {stores["fk_checks"]:.2f} s, one lookup per key and row.

Where the analysis run's time goes, stage by stage (CPU seconds in one process running the
command's steps one after the other, median of {rounds} processes; the command adds its own
argument parsing and the interpreter's exit):

| stage | CPU |
|---|---|
{stage_rows}

{_floors_verdict(setup=setup, decode=decode, replay=stages["replay"], store=stored, cc=cc)}

Totals: ours {usd_display(ours)}, ccusage {usd_display(theirs)}. ccusage prices every model of
these files at its list price, 1-hour cache writes at 2x input included: the difference is what
each counts as one request. Our prices applied with ccusage's counting, one rule at a time:

| step | entries | total |
|---|---|---|
{step_rows}

Load average: {stack.load_average()}.
"""


def _node() -> str:
    return subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=stack.DATABASE_HELP)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--events", type=int, default=1200, help="events of the 50-per-batch row (a third in ones)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the import beside ccusage")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    if not LOGS.is_dir():
        raise SystemExit(f"no transcripts at {LOGS}")
    stack.fresh_database()
    try:
        _django()
        sample = _sample_requests(args.events * len(BATCHES))
        token = stack.manage("set_plan", "bench-user", "max20")
        rows = {}
        with stack.bridge() as bridge_url, stack.service(bridge_url=bridge_url) as service_url:
            for n, batch in enumerate(BATCHES):
                events = args.events if batch > 1 else args.events // 3
                part = sample[n * args.events : n * args.events + events]
                rows[batch] = ingest(service_url, token, clients=args.clients, events=events, batch=batch, sample=part)
        side = transcripts.side_by_side(args.rounds)
        stores = transcripts.store_paths_in_process(args.rounds)
        steps = transcripts.counting_steps()
        stages = transcripts.stage_seconds(args.rounds)
    finally:
        from django.db import connections

        connections.close_all()
        stack.drop_database()
    text = ingest_section(rows, args.clients) + "\n" + import_section(side, stores, steps, stages)
    print(text)
    if args.write_docs:
        write_section("Ingestion and log import", text)


if __name__ == "__main__":
    main()
