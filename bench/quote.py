"""Quote throughput: the endpoint under concurrent clients, and the engine in process.

    .venv/bin/python bench/quote.py [--clients 32] [--seconds 10] [--rate 160] [--write-docs]

POST /api/chat/model/quote through gunicorn on PostgreSQL, from `--clients` concurrent
clients each quoting its own warm session (a 100k-token conversation cached on haiku,
written into its cache state beforehand), for `--seconds` per row: one client, the clients
paced at `--rate` quotes/s in all, and the clients back to back. Goal: p50 <= 3 ms,
p99 <= 10 ms. The engine figure is bench/quote_engine.py's (goal >= 100k quotes/s).
"""

import argparse
import asyncio
import json
import platform
import sys
import time
from datetime import date
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import stack, stages  # noqa: E402
from bench.docs import write_section  # noqa: E402
from bench.quote_engine import bench_quotes  # noqa: E402

TARGETS = ("sonnet", "opus")
QUOTE_PATH = "/api/chat/model/quote"
READ = "session read (1 statement)"
STORE = "quote computed and stored (1 statement)"
QUOTE_STAGES = (
    *stages.FRAME,
    ("Django: middleware, DRF dispatch, validation, rendering", stages.DJANGO, (stages.DRF, "view: the quote")),
    *stages.DRF_ROWS,
    ("the session's read with its cache state and switches (1 statement)", READ, ()),
    ("the quote computed and stored (1 statement, asynchronous commit)", STORE, ()),
    ("the view's own Python: validation, entitlements, response", "view: the quote", (READ, STORE)),
)
# A user's pace: a few quotes a second at most.
LIGHT_RATE = 5.0


def _warm_sessions(service_url: str, token: str, count: int) -> list[str]:
    """Sessions whose last turn cached 100k tokens on haiku, written into each session's cache state
    in one `manage.py shell` (what ingesting that turn's usage would store)."""
    api = httpx.Client(base_url=service_url, headers={"Authorization": f"Token {token}"}, timeout=30)
    keys = [stack.started_session(api.post("/api/chat/sessions"))["sessionKey"] for _ in range(count)]
    script = (
        "from datetime import timedelta\n"
        "from django.utils import timezone\n"
        "from billing.catalog.cost_engine import Usage\n"
        "from billing.quotes.cache_store import cache_state_record_requests\n"
        "at = timezone.now() - timedelta(seconds=5)\n"
        "for key in KEYS:\n"
        "    cache_state_record_requests(session_key=key,\n"
        "        requests=[('claude-haiku-4-5', Usage(cache_write_5m_tokens=100_000), at)])\n"
    ).replace("KEYS", repr(keys))
    stack.manage("shell", "-c", script)
    for key in keys:  # what every timed request will answer
        quote = api.post("/api/chat/model/quote", json={"sessionKey": key, "modelId": TARGETS[0]}).json()["quote"]
        assert quote["cacheState"]["from"] == "warm", quote
    return keys


def run(clients: int, seconds: float, rate: float) -> dict:
    """One client back to back (the quote's own latency) and at a light pace; `clients` paced at
    `rate` quotes/s between them (the latency each sees under that load); `clients` back to back
    (the most the machine serves, and the queueing that costs); and the bare WSGI floor."""
    stack.fresh_database()
    try:
        token = stack.manage("set_plan", "bench-user", "max20")
        with stack.bridge() as bridge_url:
            with stack.service(bridge_url=bridge_url) as service_url:
                keys = _warm_sessions(service_url, token, clients)

                def quotes(n: int) -> list[list[bytes]]:
                    return [_quote_requests(token, key) for key in keys[:n]]

                results = {
                    "one": _load(service_url, quotes(1), seconds),
                    "one_light": _load(service_url, quotes(1), seconds, rate=LIGHT_RATE),
                    "paced": _load(service_url, quotes(clients), seconds, rate=rate),
                    "saturated": _load(service_url, quotes(clients), seconds),
                }
            # The paced row again, on the threaded deployment with a clock on each stage of a request.
            results["stages"] = {}
            with stages.timed_service(bridge_url=bridge_url, path=QUOTE_PATH, into=results["stages"]) as url:
                timed = _load(url, quotes(clients), seconds, rate=rate)
            results["stages"][stages.WHOLE] = timed["stats"]["p50"]
        with stack.bare_service() as bare_url:
            bare_get = [b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"]
            results["bare"] = _load(bare_url, [bare_get], seconds)
            results["bare_light"] = _load(bare_url, [bare_get], seconds, rate=LIGHT_RATE)
        return results
    finally:
        stack.drop_database()


def _quote_requests(token: str, key: str) -> list[bytes]:
    """The client's two requests, one per target model, as bytes on the wire."""
    requests = []
    for model in TARGETS:
        body = json.dumps({"sessionKey": key, "modelId": model}).encode()
        head = (
            f"POST {QUOTE_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Token {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        requests.append(head.encode() + body)
    return requests


def _load(url: str, clients: list[list[bytes]], seconds: float, rate: float | None = None) -> dict:
    """Each client (one keep-alive connection) sends its requests in turn, back to back or (with
    `rate`) on a fixed schedule, `rate` per second in all, staggered. The load generator is one
    asyncio loop writing prepared bytes: it shares the 2 CPUs with the service, so it should
    spend as little of them as it can, and no client waits on another's thread."""
    return asyncio.run(_load_async(url, clients, seconds, rate))


async def _load_async(url: str, clients: list[list[bytes]], seconds: float, rate: float | None) -> dict:
    host, port = url.removeprefix("http://").split(":")
    connections = []
    for requests in clients:
        # Each connection sends at once: gunicorn gives a new, silent connection a thread of
        # its own to wait on, so opening them all first would tie up every thread.
        reader, writer = await asyncio.open_connection(host, int(port))
        for n in range(5):  # warm-up: connection, worker caches, prepared statements
            await _exchange(reader, writer, requests[n % len(requests)])
        connections.append((reader, writer))
    begin = time.perf_counter()
    latencies: list[float] = []

    async def client(i: int) -> None:
        (reader, writer), requests = connections[i], clients[i]
        interval = len(clients) / rate if rate else 0.0
        due, done, n = begin + interval * i / len(clients), 0.0, 0
        while due < begin + seconds:
            if rate:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
            sent = time.perf_counter()
            await _exchange(reader, writer, requests[n % len(requests)])
            # Late because the previous answer came late: that wait counts. Late because the
            # load generator's own timer woke late: it does not.
            started = due if rate and done > due else sent
            done = time.perf_counter()
            latencies.append((done - started) * 1000)
            n += 1
            due = due + interval if rate else done

    await asyncio.gather(*(client(i) for i in range(len(clients))))
    elapsed = time.perf_counter() - begin
    for _, writer in connections:
        writer.close()
    return {"stats": stack.summary(latencies), "rps": len(latencies) / elapsed, "load": stack.load_average()}


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> bytes:
    """One request and its answer on a keep-alive connection; anything but 200 stops the bench."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    )
    body = await reader.readexactly(length)
    if not head.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"bad answer: {head[:40]!r} {body[:200]!r}")
    return body


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
the production server as `make serve` runs it (gunicorn with uvicorn workers,
docker/gunicorn.conf.py) on PostgreSQL, each client on its own keep-alive connection quoting its
own session (100k tokens warm on haiku) alternately to sonnet and opus, {seconds:.0f} s per row.
Every quote is also stored.

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
switches, and the quote's insert; Django's health check sends a `SELECT 1` before the first of
them on a reused connection; plus one Redis script for the rate limit.

Each stage of a quote in the paced row, run again on the threaded WSGI deployment the service
ran on before (bench/gthread.conf.py), whose request path bench/timed_gunicorn.conf.py clocks
(medians; a stage's own time is what its parts leave over):

{stages.table(r["stages"], QUOTE_STAGES)}

This machine answers faster the busier it is. The smallest WSGI app (bench/bare_wsgi.py) on that
threaded deployment takes {bare:.2f} ms back to back and {bare_light:.2f} ms at {LIGHT_RATE:.0f}/s: each process a
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=stack.DATABASE_HELP)
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
