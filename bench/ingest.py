"""Usage ingestion and transcript import: events/s into PostgreSQL through the real endpoint,
and transcript lines/s beside ccusage, with both totals.

    .venv/bin/python bench/ingest.py [--clients 4] [--events 1200] [--write-docs]

Ingestion: gunicorn on PostgreSQL, `--clients` concurrent relays, each posting signed batches
(HMAC, nonce, timestamp, exactly as vm_bridge does) of real requests from the sample logs
into its own session, once with one record per batch and once with 50.

Import: `manage.py import_claude_logs` on every transcript in ../shared/data/claude-code-logs
(CLI wall time, and the import alone in process), then ccusage (node_modules/.bin/ccusage,
offline pricing) on the same files laid out as `projects/<repo>/<session>.jsonl`.
"""

import argparse
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import stack  # noqa: E402
from bench.docs import write_section  # noqa: E402

# A database of its own, so this can run beside the other service benchmarks.
stack.BENCH_DB = "mk0r_bench_ingest"
stack.DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{stack.BENCH_DB}"

LOGS = stack.ROOT.parent / "shared" / "data" / "claude-code-logs"
CCUSAGE = stack.ROOT / "node_modules" / ".bin" / "ccusage"
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
    from billing.log_import import log_files, log_requests_parse

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
    sessions = [api.post("/api/chat/sessions").json() for _ in range(clients)]
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


# --- transcript import beside ccusage ---


def import_cli() -> dict:
    started = time.perf_counter()
    out = stack.manage("import_claude_logs", str(LOGS), "--json")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "report": json.loads(out)}


def import_in_process() -> float:
    from billing.log_import import logs_import

    started = time.perf_counter()
    logs_import([LOGS])
    return time.perf_counter() - started


def ccusage_run() -> dict:
    home = Path(tempfile.mkdtemp(prefix="mk0r-ccusage-"))
    try:
        for path in sorted(LOGS.glob("*.jsonl")):
            repo, session = path.stem.split("__", 1)
            target = home / "projects" / repo / f"{session}.jsonl"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        env = {**os.environ, "CLAUDE_CONFIG_DIR": str(home), "NO_COLOR": "1"}
        cmd = [str(CCUSAGE), "session", "--json", "--offline", "--mode", "calculate"]
        started = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, timeout=600)
        seconds = time.perf_counter() - started
        version = subprocess.run([str(CCUSAGE), "--version"], capture_output=True, text=True).stdout.strip()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    data = json.loads(done.stdout)
    by_model: Counter = Counter()
    for session in data["sessions"]:
        for row in session["modelBreakdowns"]:
            by_model[row["modelName"]] += Decimal(str(row["cost"]))
    return {"seconds": seconds, "totals": data["totals"], "by_model": by_model, "version": version}


def ours_under_ccusage_rules(unpriced: set[str]) -> dict:
    """Our prices applied the way ccusage counts, one rule at a time, to explain the gap."""
    from billing.costs import Usage, usage_cost
    from billing.log_import import PriceBook

    book = PriceBook()
    first: dict[str, tuple] = {}
    for path in sorted(LOGS.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            d = json.loads(line)
            message = d.get("message") or {}
            if d.get("type") != "assistant" or message.get("model") in (None, "<synthetic>"):
                continue
            # ccusage: one entry per message id + request id, the first line seen.
            key = f"{message.get('id')}:{d.get('requestId')}"
            if key not in first:
                first[key] = (message["model"], message["usage"], datetime.fromisoformat(d["timestamp"]))
    steps = {"first_line": Decimal(0), "one_rate_writes": Decimal(0), "unpriced_zero": Decimal(0)}
    for model, raw, at in first.values():
        _, _, prices = book.lookup(model, at)
        usage = Usage.from_anthropic(raw)
        steps["first_line"] += usage_cost(usage=usage, prices=prices).total
        flat = Usage(
            input_tokens=usage.input_tokens,
            cache_write_5m_tokens=usage.cache_write_tokens,  # no 1h rate: every write at the 5m price
            cache_read_tokens=usage.cache_read_tokens,
            output_tokens=usage.output_tokens,
        )
        cost = usage_cost(usage=flat, prices=prices).total
        steps["one_rate_writes"] += cost
        if model not in unpriced:
            steps["unpriced_zero"] += cost
    return {"entries": len(first), **steps}


def report(rows: dict, cli: dict, in_process: float, cc: dict, rules: dict, clients: int) -> str:
    lines = cli["report"]["lines"]
    ours = Decimal(cli["report"]["totalUsd"])
    theirs = Decimal(str(cc["totals"]["totalCost"])).quantize(Decimal("0.000001"))
    unpriced = sorted(m for m, cost in cc["by_model"].items() if cost == 0)
    ingest_rows = "\n".join(
        f"| {batch} | {r['events']} | {r['seconds']:.2f} s | {r['per_second']:,.0f} |" for batch, r in rows.items()
    )
    q = Decimal("0.01")
    usd = {
        "ours": ours.quantize(q),
        "theirs": theirs.quantize(q),
        "first": rules["first_line"].quantize(q),
        "flat": rules["one_rate_writes"].quantize(q),
        "zero": rules["unpriced_zero"].quantize(q),
    }
    files, requests = cli["report"]["files"], cli["report"]["requests"]["total"]
    speed = {"cli": lines / cli["seconds"], "proc": lines / in_process, "cc": lines / cc["seconds"]}
    command = "`ccusage session --json --offline --mode calculate`"
    return f"""`bench/ingest.py`, Python {platform.python_version()} on {platform.machine()} ({date.today()}).

Ingestion: `POST /api/internal/usage` through gunicorn (docker/gunicorn.conf.py: 2 workers ×
16 threads) on PostgreSQL, {clients} relays at once, each into its own session, signed like
vm_bridge (HMAC, nonce in Redis, timestamp window). Each event is validated, priced at its own
time, fed to the session's persisted cache tracker (row lock), given a miss cause and stored,
all in one transaction per batch. A batch costs the same dozen queries whatever its size (the
session lock, known ids, the tracker state read and written once, one bulk insert, the
waiting-switch lookup; prices come from the per-process catalog cache), so the relay's batching
is what buys throughput: a one-record batch pays the whole request (auth by signature, nonce in
Redis, transaction) for one event.

| records per batch | events | time | events/s |
|---|---|---|---|
{ingest_rows}

Transcript import of the {files} sample sessions ({lines:,} lines, {requests:,} requests) beside
ccusage {cc["version"]} ({command}, node {_node()}):

| | wall time | lines/s | total |
|---|---|---|---|
| `import_claude_logs --json` (CLI, with Django start) | {cli["seconds"]:.2f} s | {speed["cli"]:,.0f} | ${usd["ours"]} |
| the import alone, in process (`logs_import`) | {in_process:.2f} s | {speed["proc"]:,.0f} | |
| ccusage | {cc["seconds"]:.2f} s | {speed["cc"]:,.0f} | ${usd["theirs"]} |
| ratio ccusage / import CLI | {cc["seconds"] / cli["seconds"]:.2f}x | | |

The totals differ on purpose; applying ccusage's counting rules to our prices one at a time:

| step | total |
|---|---|
| ours: one entry per request (last line), 1h writes at 2x, every model priced | ${usd["ours"]} |
| ccusage's dedupe: one entry per message id + request id, its first line ({rules["entries"]:,}) | ${usd["first"]} |
| every cache write at the 5m price (ccusage has no 1h rate) | ${usd["flat"]} |
| models its offline price table lacks priced $0 ({", ".join(unpriced) or "none"}) | ${usd["zero"]} |
| ccusage | ${usd["theirs"]} |

The first line of a request carries a provisional `output_tokens` (often 1-8); ccusage keeps it and
undercounts output, while its key (message id + request id) counts a response that one gateway
relabelled with several message ids more than once. The remaining gap after the last step is
ccusage's own rate table (long-context tiers, LiteLLM figures). Load average: {stack.load_average()}.
"""


def _node() -> str:
    return subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--events", type=int, default=1200, help="events of the 50-per-batch row (a third in ones)")
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
        cli = import_cli()
        in_process = import_in_process()
        cc = ccusage_run()
        rules = ours_under_ccusage_rules({m for m, cost in cc["by_model"].items() if cost == 0})
    finally:
        from django.db import connections

        connections.close_all()
        stack.drop_database()
    text = report(rows, cli, in_process, cc, rules, args.clients)
    print(text)
    if args.write_docs:
        write_section("Ingestion and log import", text)


if __name__ == "__main__":
    main()
