"""Quote throughput: the endpoint under concurrent clients, and the engine in process.

    .venv/bin/python bench/quote.py [--clients 32] [--seconds 10] [--rate 160] [--write-docs]

POST /api/chat/model/quote through gunicorn on PostgreSQL, from `--clients` concurrent
clients each quoting its own warm session (a 100k-token conversation cached on haiku,
recorded through the real usage path), for `--seconds` per row: one client, the clients
paced at `--rate` quotes/s in all, and the clients back to back. Goal: p50 <= 3 ms,
p99 <= 10 ms. The engine figure is bench/quote_engine.py's (goal >= 100k quotes/s).
"""

import argparse
import http.client
import json
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
# A user's pace: a few quotes a second at most.
LIGHT_RATE = 5.0


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


def run(clients: int, seconds: float, rate: float) -> dict:
    """One client back to back (the quote's own latency) and at a light pace; `clients` paced at
    `rate` quotes/s between them (the latency each sees under that load); `clients` back to back
    (the most the machine serves, and the queueing that costs); and the bare WSGI floor."""
    stack.fresh_database()
    try:
        token = stack.manage("set_plan", "bench-user", "max20")
        with stack.bridge() as bridge_url, stack.service(bridge_url=bridge_url) as service_url:
            keys = _warm_sessions(service_url, token, clients)

            def quoters(n: int) -> list:
                return [_Quoter(service_url, token, key).quote for key in keys[:n]]

            results = {
                "one": _load(quoters(1), seconds),
                "one_light": _load(quoters(1), seconds, rate=LIGHT_RATE),
                "paced": _load(quoters(clients), seconds, rate=rate),
                "saturated": _load(quoters(clients), seconds),
            }
        with stack.bare_service() as bare_url:
            results["bare"] = _load([_Getter(bare_url).get], seconds)
            results["bare_light"] = _load([_Getter(bare_url).get], seconds, rate=LIGHT_RATE)
        return results
    finally:
        stack.drop_database()


# Lean clients (http.client, one keep-alive connection each): the load generator shares the
# 2 CPUs with the service, and httpx would spend more of them per request than the quote's own
# database work. Each send returns None, or what was wrong with the answer.


class _Quoter:
    def __init__(self, service_url: str, token: str, key: str):
        self.connection = _connect(service_url)
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        self.bodies = [json.dumps({"sessionKey": key, "modelId": model}) for model in TARGETS]

    def quote(self, n: int) -> str | None:
        self.connection.request("POST", "/api/chat/model/quote", self.bodies[n % 2], self.headers)
        response = self.connection.getresponse()
        body = response.read()
        if response.status != 200 or json.loads(body)["quote"]["cacheState"]["from"] != "warm":
            return body[:200].decode()
        return None


class _Getter:
    def __init__(self, url: str):
        self.connection = _connect(url)

    def get(self, n: int) -> str | None:
        self.connection.request("GET", "/")
        response = self.connection.getresponse()
        body = response.read()
        return None if response.status == 200 else body[:200].decode()


def _connect(url: str) -> http.client.HTTPConnection:
    host, port = url.removeprefix("http://").split(":")
    return http.client.HTTPConnection(host, int(port), timeout=30)


def _load(senders: list, seconds: float, rate: float | None = None) -> dict:
    """Each sender sends back to back, or (with `rate`) on a fixed schedule, `rate` per second in
    all, staggered. A paced request held up by the answer before it counts from when it was due,
    so a slow answer that delays the next send counts against that one too."""
    clients = len(senders)
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    begin = [0.0]
    # The clock starts when every client has warmed up, not before.
    start = threading.Barrier(clients + 1, action=lambda: begin.__setitem__(0, time.perf_counter()))

    def client(i: int) -> None:
        send = senders[i]
        for n in range(5):  # warm-up: connection, worker caches, prepared statements
            send(n)
        start.wait()
        deadline = begin[0] + seconds
        interval = clients / rate if rate else 0.0
        due = begin[0] + interval * i / clients
        done = 0.0
        n = 0
        while due < deadline:
            if rate:
                time.sleep(max(0.0, due - time.perf_counter()))
            sent = time.perf_counter()
            error = send(n)
            # Late because the previous answer came late: that wait counts. Late because this
            # client's own timer woke late: it does not (that is the load generator, not the service).
            started = due if rate and done > due else sent
            done = time.perf_counter()
            latencies[i].append((done - started) * 1000)
            if error:
                errors.append(error)
            n += 1
            due = due + interval if rate else done

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - begin[0]
    flat = [ms for per_client in latencies for ms in per_client]
    if errors:
        raise SystemExit(f"{len(errors)} bad answers, e.g. {errors[0]}")
    return {"stats": stack.summary(flat), "rps": len(flat) / elapsed, "load": stack.load_average()}


def _row(clients: int, how: str, result: dict) -> str:
    stats = result["stats"]
    return f"| {clients} | {how} | {stats['p50']:.2f} ms | {stats['p99']:.2f} ms | {result['rps']:.0f} |"


def report(results: dict, engine: float, clients: int, seconds: float, rate: float) -> str:
    r = results
    paced_how = f"{rate / clients:.1f}/s each on a fixed schedule ({rate:.0f}/s in all)"
    light_how = f"{LIGHT_RATE:.0f}/s on a fixed schedule"
    # Little's law: with `clients` always waiting, latency is clients / throughput.
    needed = clients / 0.003
    bare, bare_light = r["bare"]["stats"]["p50"], r["bare_light"]["stats"]["p50"]
    return f"""`bench/quote.py`, Python {platform.python_version()} on {platform.machine()} ({date.today()});
gunicorn with docker/gunicorn.conf.py (2 workers × 16 threads, keep-alive) on PostgreSQL, each
client on its own keep-alive connection quoting its own session (100k tokens warm on haiku)
alternately to sonnet and opus, {seconds:.0f} s per row. Every quote is also stored.

| clients | how they send | p50 | p99 | requests/s |
|---|---|---|---|---|
{_row(1, "back to back", r["one"])}
{_row(1, light_how, r["one_light"])}
{_row(clients, paced_how, r["paced"])}
{_row(clients, "back to back (saturation)", r["saturated"])}
| goal | | ≤ 3 ms | ≤ 10 ms | |

Engine in process (`quote_compute`, from bench/quote_engine.py): {engine:,.0f} quotes/s (goal ≥ 100,000).

Per quote the service runs three statements, each prepared on its connection's first run: token
auth (user and subscription joined), one read of the session with its cache state and recent
switches, and the quote's insert; plus one Redis script for the rate limit.

This machine answers faster the busier it is. The smallest WSGI app (bench/bare_wsgi.py) on the
same gunicorn takes {bare:.2f} ms back to back and {bare_light:.2f} ms at {LIGHT_RATE:.0f}/s: each process a
request wakes (gunicorn's thread, a PostgreSQL backend per statement, Redis) pays that wake-up
when the CPUs were idle, so at a light pace a quote costs more than back to back.

The paced row is what {clients} users see while the service keeps up; a request held up by a slow
answer before it counts from when it was due. The saturated row measures capacity: the clients,
gunicorn and PostgreSQL share 2 CPUs, and with {clients} requests always in flight a request waits for
the {clients - 1} before it, so its latency is {clients} / throughput (Little's law). A p50 of 3 ms there
would take {needed:,.0f} requests/s, {needed / r["saturated"]["rps"]:.0f}x what these 2 cores serve.
Load average: {r["saturated"]["load"]}.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=160.0, help="quotes/s in all for the paced row")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    result = run(args.clients, args.seconds, args.rate)
    engine = bench_quotes(2.0)
    text = report(result, engine, args.clients, args.seconds, args.rate)
    print(text)
    if args.write_docs:
        write_section("Quote endpoint", text)


if __name__ == "__main__":
    main()
