"""Open chat turns: how many the production server carries while other sessions quote and switch.

    .venv/bin/python bench/streams.py [--quick] [--write-docs]

The server `make serve` runs (gunicorn with uvicorn workers, docker/gunicorn.conf.py) on
PostgreSQL and Redis, attached to bench/stream_double.py, a bridge that streams every turn for
TURN_SECONDS at 2 events/s. For each row, N turns start (START_RATE a second) and stream at once;
while all N are open, other sessions quote (20/s) and switch (5/s) at a steady pace. Rows:
N = 32, 256 and 1,000 on the production server, and N = 64 on the threaded WSGI deployment it
replaced (bench/gthread.conf.py: 2 workers x 16 threads), in the same run. Then the relay's
ceiling: turns that stream as fast as they are read. Goal at N = 1,000: no errors, every
first event within 1 s of the bridge's, quote p99 <= 50 ms, switch p99 <= 100 ms, at most
50 KiB of server memory per open turn. --quick: 30 s turns, for development; --only N: just the
production server's row at N open turns (no side-by-side row, no ceiling), to look into one.
The server's stderr (its log records and tracebacks) is kept per row under var/bench-streams/;
after a row with errors, the log's path and the exceptions it records are printed.
"""

import argparse
import asyncio
import collections
import contextlib
import json
import os
import platform
import resource
import sys
import time
from datetime import date
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import stack  # noqa: E402
from bench.docs import write_section  # noqa: E402

ROWS = ((stack.ASGI, 32), (stack.ASGI, 256), (stack.ASGI, 1000), (stack.GTHREAD, 64))
EVENTS_PER_SECOND = 2
QUOTE_RATE, SWITCH_RATE = 20.0, 5.0
PACED_SESSIONS = 20  # sessions that quote, and as many again that switch
# Turns started per second: a node holding 1,000 one-minute turns starts about 17 a second.
START_RATE = 50.0
CEILING_STREAMS, CEILING_SECONDS = 50, 10.0
_CLK = os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def stream_double():
    port = stack.free_port()
    cmd = [sys.executable, "-m", "bench.stream_double", "--port", str(port), "--token", stack.BRIDGE_TOKEN]
    url = f"http://127.0.0.1:{port}"
    with stack._process(cmd, dict(os.environ)):
        stack._wait_http(f"{url}/health", headers={"Authorization": f"Bearer {stack.BRIDGE_TOKEN}"})
        yield url


# --- the server's processes -------------------------------------------------------------------


def _server_pids(url: str) -> list[int]:
    """gunicorn's master (the process bound to the url's port) and its workers."""
    bind = url.removeprefix("http://").encode()
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    master = next(pid for pid in pids if bind in _read(pid, "cmdline") and b"gunicorn" in _read(pid, "cmdline"))
    return [master, *(pid for pid in pids if _stat(pid)[1:2] == [str(master)])]


def _read(pid: int, name: str) -> bytes:
    try:
        return (Path("/proc") / str(pid) / name).read_bytes()
    except OSError:
        return b""


def _stat(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat from the state on (state, ppid, ..., utime at [11], stime at [12])."""
    stat = _read(pid, "stat")
    return stat.rsplit(b")", 1)[-1].decode().split() if stat else []


def _cpu_seconds(pids: list[int]) -> float:
    return sum(int(f[11]) + int(f[12]) for f in map(_stat, pids) if f) / _CLK


def _rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        for line in _read(pid, "status").decode().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


# --- HTTP on raw sockets: the load generator shares the 2 CPUs with what it measures -----------


def _request(path: str, body: dict, token: str) -> bytes:
    raw = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(raw)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + raw


async def _call(address: tuple[str, int], request: bytes) -> int:
    """One request on a connection of its own; the answer's status."""
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(request)
        status = int((await reader.readline()).split()[1])
        await reader.read()  # to the end: the server closes
        return status
    finally:
        writer.close()


async def _turn(address, request: bytes, timeout: float) -> tuple[float | None, str]:
    """One chat turn: seconds to its first `update`, and how it ended (done, error, or what failed)."""
    sent = time.perf_counter()
    first, ending = None, "broke off"
    reader, writer = await asyncio.open_connection(*address)
    try:
        async with asyncio.timeout(timeout):
            writer.write(request)
            status = (await reader.readline()).split()
            if len(status) < 2 or status[1] != b"200":
                return None, f"status {status[1:2]}"
            # Chunked or not, each event's lines start a line of their own.
            while line := await reader.readline():
                if line.startswith(b"event: update") and first is None:
                    first = time.perf_counter() - sent
                elif line.startswith((b"event: done", b"event: error")):
                    ending = line[7:].strip().decode()
                    break
    except TimeoutError:
        ending = "timed out"
    finally:
        writer.close()
    return first, ending


async def _sleep_until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.perf_counter()))


# --- one row ----------------------------------------------------------------------------------


async def _row_load(url: str, token: str, keys: dict, n: int, turn_s: float, pids: list[int], switch_round: list):
    host, port = url.removeprefix("http://").split(":")
    address = (host, int(port))
    timeout = 3 * turn_s + 30
    prompt = f"{int(turn_s * EVENTS_PER_SECOND)} {1 / EVENTS_PER_SECOND}"
    begin = time.perf_counter() + 0.5
    window = (begin + n / START_RATE + 1.0, begin + turn_s - 1.0)  # every turn open
    firsts: list[float] = []
    errors: collections.Counter = collections.Counter()
    paced: dict[str, list[float]] = {"quote": [], "switch": []}
    sample: dict[str, float] = {}

    async def turn(i: int) -> None:
        await _sleep_until(begin + i / START_RATE)
        request = _request("/api/chat", {"sessionKey": keys["stream"][i], "prompt": prompt}, token)
        try:
            first, ending = await _turn(address, request, timeout)
        except OSError as exc:
            first, ending = None, type(exc).__name__
        if first is not None:
            firsts.append(first * 1000)
        if ending != "done":
            errors[f"turn: {ending}"] += 1

    async def timed(kind: str, due: float, request: bytes) -> None:
        try:
            status = await asyncio.wait_for(_call(address, request), timeout)
        except (OSError, TimeoutError) as exc:
            status = type(exc).__name__
        paced[kind].append((time.perf_counter() - due) * 1000)
        if status != 200:
            errors[f"{kind}: {status}"] += 1

    async def pace(kind: str, rate: float) -> None:
        due, i, tasks = window[0], 0, []
        while due < window[1]:
            await _sleep_until(due)
            if kind == "quote":
                body = {"sessionKey": keys["quote"][i % PACED_SESSIONS], "modelId": "sonnet"}
                request = _request("/api/chat/model/quote", body, token)
            else:
                if i % PACED_SESSIONS == 0:
                    switch_round[0] += 1  # each round moves every switching session to the other model
                body = {
                    "sessionKey": keys["switch"][i % PACED_SESSIONS],
                    "modelId": ("haiku", "sonnet")[switch_round[0] % 2],
                }
                request = _request("/api/chat/model", body, token)
            tasks.append(asyncio.create_task(timed(kind, due, request)))
            due, i = due + 1 / rate, i + 1
        await asyncio.gather(*tasks)

    async def measure() -> None:
        await _sleep_until(window[0])
        sample["cpu"], sample["at"] = _cpu_seconds(pids), time.perf_counter()
        await _sleep_until(window[1])
        sample["cpu"] = _cpu_seconds(pids) - sample["cpu"]
        sample["wall"] = time.perf_counter() - sample["at"]
        sample["rss"] = _rss_kib(pids)

    await asyncio.gather(
        *(turn(i) for i in range(n)), pace("quote", QUOTE_RATE), pace("switch", SWITCH_RATE), measure()
    )
    return {"first": firsts, "errors": dict(errors), **paced, **sample}


def run_row(
    server, n: int, turn_s: float, double_url: str, token: str, keys: dict, switch_round: list, log: Path
) -> dict:
    with stack.service(bridge_url=double_url, server=server, log=log) as url:
        pids = _server_pids(url)

        # Warm-up: the workers' view threads, database connections, prepared statements and
        # bridge clients exist before the idle memory is read.
        async def warm() -> None:
            host, port = url.removeprefix("http://").split(":")
            for key in keys["quote"]:
                body = {"sessionKey": key, "modelId": "sonnet"}
                await asyncio.gather(
                    *(_call((host, int(port)), _request("/api/chat/model/quote", body, token)) for _ in range(8))
                )
            turns = (_request("/api/chat", {"sessionKey": key, "prompt": "1 0"}, token) for key in keys["stream"][:32])
            await asyncio.gather(*(_turn((host, int(port)), turn, 30) for turn in turns))

        asyncio.run(warm())
        idle_rss = _rss_kib(pids)
        result = asyncio.run(_row_load(url, token, keys, n, turn_s, pids, switch_round))
        result["idle_rss"] = idle_rss
        return result


def ceiling(double_url: str, token: str, keys: dict, log: Path) -> dict:
    """Turns that stream as fast as they are read: events relayed per second of server CPU."""
    with stack.service(bridge_url=double_url, log=log) as url:
        pids = _server_pids(url)
        host, port = url.removeprefix("http://").split(":")
        counted: list[int] = []

        async def reader(key: str, until: float) -> None:
            request = _request("/api/chat", {"sessionKey": key, "prompt": "100000000 0"}, token)
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(request)
            count = 0
            while time.perf_counter() < until and (line := await reader.readline()):
                count += line.startswith(b"event: update")
            counted.append(count)
            writer.close()  # the turn is cancelled

        async def load() -> dict:
            cpu, begin = _cpu_seconds(pids), time.perf_counter()
            until = begin + CEILING_SECONDS
            await asyncio.gather(*(reader(key, until) for key in keys["stream"][:CEILING_STREAMS]))
            return {"events": sum(counted), "wall": time.perf_counter() - begin, "cpu": _cpu_seconds(pids) - cpu}

        return asyncio.run(load())


def _create_sessions(url: str, token: str, count: int) -> list[str]:
    async def create() -> list[str]:
        limits = asyncio.Semaphore(16)
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Token {token}"}, timeout=60) as api:

            async def one() -> str:
                async with limits:
                    return stack.started_session(await api.post("/api/chat/sessions"))["sessionKey"]

            return await asyncio.gather(*(one() for _ in range(count)))

    return asyncio.run(create())


def _report_server_errors(log: Path, result: dict) -> None:
    found = stack.server_errors(log)
    if not result["errors"] and not found:
        return
    print(f"  server log: {log}", flush=True)
    for what, count in found.most_common(10):
        print(f"  {count:>6} x {what}", flush=True)


def run(turn_s: float, rows_to_run=ROWS, with_ceiling: bool = True) -> dict:
    logs = stack.ROOT / "var" / "bench-streams" / time.strftime("%Y%m%d-%H%M%S")
    logs.mkdir(parents=True, exist_ok=True)
    print(f"server logs: {logs}", flush=True)
    stack.fresh_database()
    try:
        token = stack.manage("set_plan", "bench-user", "max20")
        with stream_double() as double_url:
            with stack.service(bridge_url=double_url, log=logs / "setup.log") as url:
                total = max(n for _, n in rows_to_run) + 2 * PACED_SESSIONS
                made = _create_sessions(url, token, total)
            keys = {
                "quote": made[:PACED_SESSIONS],
                "switch": made[PACED_SESSIONS : 2 * PACED_SESSIONS],
                "stream": made[2 * PACED_SESSIONS :],
            }
            switch_round = [0]
            rows = []
            for server, n in rows_to_run:
                log = logs / f"{'uvicorn' if server == stack.ASGI else 'gthread'}-{n}.log"
                rows.append((server, n, run_row(server, n, turn_s, double_url, token, keys, switch_round, log)))
                print(_row(server, n, rows[-1][2]), flush=True)
                _report_server_errors(log, rows[-1][2])
            result = ceiling(double_url, token, keys, logs / "ceiling.log") if with_ceiling else None
            return {"rows": rows, "ceiling": result, "load": stack.load_average()}
    finally:
        stack.drop_database()


def _p(values: list[float]) -> str:
    if not values:
        return "–"
    summary = stack.summary(values)
    return f"{summary['p50']:,.0f} / {summary['p99']:,.0f} ms"


def _row(server, n: int, r: dict) -> str:
    name = "uvicorn (make serve)" if server == stack.ASGI else "gthread 2 × 16 (before)"
    errors = sum(r["errors"].values())
    detail = f" ({', '.join(f'{k}: {v}' for k, v in sorted(r['errors'].items()))})" if errors else ""
    per_turn = (r["rss"] - r["idle_rss"]) / n
    return (
        f"| {name} | {n:,} | {_p(r['first'])} | {_p(r['quote'])} | {_p(r['switch'])} | {errors}{detail} "
        f"| {r['rss'] / 1024:,.0f} MiB | {per_turn:,.0f} KiB | {100 * r['cpu'] / r['wall']:.0f} % |"
    )


def report(result: dict, turn_s: float) -> str:
    rows = "\n".join(_row(server, n, r) for server, n, r in result["rows"])
    c = result["ceiling"]
    return f"""`bench/streams.py`, Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs
({date.today()}, load average {result["load"]} at the end). The server on PostgreSQL and Redis,
attached to bench/stream_double.py: every turn streams {turn_s:.0f} s, {EVENTS_PER_SECOND} events/s, the
first event at once. N turns start, {START_RATE:.0f} a second; while all N are open, 20 other sessions
quote ({QUOTE_RATE:.0f}/s in all) and 20 others switch model ({SWITCH_RATE:.0f}/s), each request on a
connection of its own. The server, the bridge double and the load generator share the CPUs.

| server | open turns | first event p50 / p99 | quote p50 / p99 | switch p50 / p99 | errors | RSS | per turn | CPU |
|---|---|---|---|---|---|---|---|---|
{rows}

- *first event*: from sending `POST /api/chat` to reading the turn's first `update`; the bridge
  sends it at once, so all of it is the server's (authentication, the session's read, the
  bridge connection) and the wait for a worker that can take the request.
- *quote*, *switch*: from the moment each request was due (a fixed schedule) to its whole answer.
- *errors*: turns that did not end with `done`, and quotes or switches not answered 200.
- *RSS*: gunicorn's master and workers with all turns open; *per turn*: that less the
  same processes idle before the row, divided by N.
- *CPU*: the server's processes, while all turns were open, in % of one CPU.

Relay ceiling: {CEILING_STREAMS} turns streaming as fast as they are read relayed
{c["events"] / c["wall"]:,.0f} events/s for {CEILING_SECONDS:.0f} s with the server at
{100 * c["cpu"] / c["wall"]:.0f} % of one CPU: **{c["events"] / c["cpu"]:,.0f} events per CPU-second**
(the bridge double and the readers took the rest of the machine).
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=stack.DATABASE_HELP)
    parser.add_argument("--quick", action="store_true", help="30 s turns instead of 60 s")
    parser.add_argument("--only", type=int, metavar="N", help="only the production server's row at N open turns")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    if args.only and args.write_docs:
        parser.error("--only measures one row: it does not write the docs' table")
    # Each open turn is a socket here, and two in the server (which raises its own limit).
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    turn_s = 30.0 if args.quick else 60.0
    if args.only:
        run(turn_s, rows_to_run=((stack.ASGI, args.only),), with_ceiling=False)
        return
    text = report(run(turn_s), turn_s)
    print(text)
    if args.write_docs:
        write_section("Open chat turns", text)


if __name__ == "__main__":
    main()
