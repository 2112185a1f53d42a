"""Quote throughput: the endpoint under concurrent clients, and the engine in process.

    .venv/bin/python bench/quote.py [--clients 32] [--seconds 10] [--write-docs]

POST /api/chat/model/quote through gunicorn on PostgreSQL, from `--clients` concurrent
clients each quoting its own warm session (a 100k-token conversation cached on haiku,
recorded through the real usage path), for `--seconds`. Goal: p50 <= 3 ms, p99 <= 10 ms.
The engine figure is bench/quote_engine.py's (goal >= 100k quotes/s).
"""

import argparse
import os
import platform
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import stack  # noqa: E402
from bench.docs import write_section  # noqa: E402
from bench.quote_engine import bench_quotes  # noqa: E402

TARGETS = ("sonnet", "opus")


def _warm_sessions(service_url: str, token: str, count: int) -> list[str]:
    """Sessions whose last turn cached 100k tokens on haiku, recorded by the ingestion service."""
    api = httpx.Client(base_url=service_url, headers={"Authorization": f"Token {token}"}, timeout=30)
    keys = [api.post("/api/chat/sessions").json()["sessionKey"] for _ in range(count)]
    script = (
        "from datetime import timedelta\n"
        "from django.utils import timezone\n"
        "from billing.costs import Usage\n"
        "from billing.cache_store import cache_state_record_request\n"
        "for key in KEYS:\n"
        "    cache_state_record_request(session_key=key, model='claude-haiku-4-5',\n"
        "        usage=Usage(cache_write_5m_tokens=100_000), at=timezone.now() - timedelta(seconds=5))\n"
    ).replace("KEYS", repr(keys))
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=stack.ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "mk0r.settings.base", "DATABASE_URL": stack.DATABASE_URL},
        check=True,
    )
    return keys


def run(clients: int, seconds: float) -> dict:
    """One client (the quote's own service time), then `clients` at once (throughput, queueing)."""
    stack.fresh_database()
    try:
        token = stack.manage("set_plan", "bench-user", "max20")
        with stack.bridge() as bridge_url, stack.service(bridge_url=bridge_url, workers=4) as service_url:
            keys = _warm_sessions(service_url, token, clients)
            return {n: _load(service_url, token, keys[:n], seconds) for n in (1, clients)}
    finally:
        stack.drop_database()


def _load(service_url: str, token: str, keys: list[str], seconds: float) -> dict:
    clients = len(keys)
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    deadline = [0.0]
    # The clock starts when every client has warmed up, not before.
    start = threading.Barrier(clients + 1, action=lambda: deadline.__setitem__(0, time.perf_counter() + seconds))

    def client(i: int) -> None:
        http = httpx.Client(base_url=service_url, headers={"Authorization": f"Token {token}"}, timeout=30)
        for n in range(5):  # warm-up: connection, worker caches
            http.post("/api/chat/model/quote", json={"sessionKey": keys[i], "modelId": TARGETS[n % 2]})
        start.wait()
        n = 0
        while time.perf_counter() < deadline[0]:
            t0 = time.perf_counter()
            response = http.post("/api/chat/model/quote", json={"sessionKey": keys[i], "modelId": TARGETS[n % 2]})
            latencies[i].append((time.perf_counter() - t0) * 1000)
            if response.status_code != 200 or response.json()["quote"]["cacheState"]["from"] != "warm":
                errors.append(response.text[:200])
            n += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    flat = [ms for per_client in latencies for ms in per_client]
    if errors:
        raise SystemExit(f"{len(errors)} bad answers, e.g. {errors[0]}")
    return {"stats": stack.summary(flat), "rps": len(flat) / elapsed, "load": stack.load_average()}


def report(results: dict, engine: float, clients: int, seconds: float) -> str:
    one, many = results[1], results[clients]
    return f"""`bench/quote.py`, Python {platform.python_version()} on {platform.machine()} ({date.today()});
gunicorn (4 workers × 4 threads, keep-alive, as in production) on PostgreSQL, each client
quoting its own session (100k tokens warm
on haiku) alternately to sonnet and opus, {seconds:.0f} s per row. Every quote is also stored.

| clients | p50 | p99 | requests/s |
|---|---|---|---|
| 1 | {one["stats"]["p50"]:.2f} ms | {one["stats"]["p99"]:.2f} ms | {one["rps"]:.0f} |
| {clients} | {many["stats"]["p50"]:.2f} ms | {many["stats"]["p99"]:.2f} ms | {many["rps"]:.0f} |
| goal | ≤ 3 ms | ≤ 10 ms | |

Engine in process (`quote_compute`, from bench/quote_engine.py): {engine:,.0f} quotes/s (goal ≥ 100,000).

Clients, gunicorn and PostgreSQL share the same 2 CPUs. With {clients} clients a request waits for
a free worker, so its latency is about clients / throughput; the 1-client row is the quote's own
service time. Load average: {many["load"]}.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    result = run(args.clients, args.seconds)
    engine = bench_quotes(2.0)
    text = report(result, engine, args.clients, args.seconds)
    print(text)
    if args.write_docs:
        write_section("Quote endpoint", text)


if __name__ == "__main__":
    main()
