"""The relay alone: server CPU per event relayed, and memory per open turn, at 2 events/s a turn.

    .venv/bin/python bench/relay.py [--turns N] [--seconds S]

The server `make serve` runs (as bench/streams.py starts it, on PostgreSQL and Redis, attached to
bench/stream_double.py) with N turns open, each streaming an `update` every 0.5 s for S seconds,
and nothing else: no quotes, no switches. While all N are open, the server's CPU
(/proc/<pid>/stat of gunicorn's master and workers) is divided by the events the clients read in
that window. To compare two commits, run it from a checkout of each, one after the other.
"""

import argparse
import asyncio
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import stack  # noqa: E402
from bench.streams import (  # noqa: E402
    EVENTS_PER_SECOND,
    START_RATE,
    _cpu_seconds,
    _create_sessions,
    _request,
    _rss_kib,
    _server_pids,
    _sleep_until,
    _turn,
    stream_double,
)


async def _load(url: str, token: str, keys: list[str], turn_s: float, pids: list[int]) -> dict:
    host, port = url.removeprefix("http://").split(":")
    prompt = f"{int(turn_s * EVENTS_PER_SECOND)} {1 / EVENTS_PER_SECOND}"
    begin = time.perf_counter() + 0.5
    window = (begin + len(keys) / START_RATE + 1.0, begin + turn_s - 1.0)
    counted = [0]
    sample: dict = {}

    async def turn(i: int) -> str:
        await _sleep_until(begin + i / START_RATE)
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(_request("/api/chat", {"sessionKey": keys[i], "prompt": prompt}, token))
        ending = "broke off"
        try:
            while line := await reader.readline():
                if line.startswith(b"event: update"):
                    counted[0] += window[0] <= time.perf_counter() < window[1]
                elif line.startswith((b"event: done", b"event: error")):
                    ending = line[7:].strip().decode()
                    break
        finally:
            writer.close()
        return ending

    async def measure() -> None:
        await _sleep_until(window[0])
        cpu, at = _cpu_seconds(pids), time.perf_counter()
        await _sleep_until(window[1])
        sample.update(cpu=_cpu_seconds(pids) - cpu, wall=time.perf_counter() - at, rss=_rss_kib(pids))

    *endings, _ = await asyncio.gather(*(turn(i) for i in range(len(keys))), measure())
    return {**sample, "events": counted[0], "errors": sum(e != "done" for e in endings)}


def run(n: int, turn_s: float) -> dict:
    stack.fresh_database()
    try:
        token = stack.manage("set_plan", "bench-user", "max20")
        log = stack.ROOT / "var" / "bench-relay.log"
        with stream_double() as double_url, stack.service(bridge_url=double_url, log=log) as url:
            keys = _create_sessions(url, token, n)
            pids = _server_pids(url)
            # Warm-up: view threads, database connections and bridge clients exist first.
            host, port = url.removeprefix("http://").split(":")
            warm = (_request("/api/chat", {"sessionKey": key, "prompt": "1 0"}, token) for key in keys[:32])

            async def warm_up() -> None:
                await asyncio.gather(*(_turn((host, int(port)), request, 30) for request in warm))

            asyncio.run(warm_up())
            idle_rss = _rss_kib(pids)
            result = asyncio.run(_load(url, token, keys, turn_s, pids))
            return {**result, "idle_rss": idle_rss}
    finally:
        stack.drop_database()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=stack.DATABASE_HELP)
    parser.add_argument("--turns", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=40.0, help="each turn's length")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    r = run(args.turns, args.seconds)
    print(
        f"{args.turns} turns: {r['events'] / r['wall']:,.0f} events/s relayed, server "
        f"{100 * r['cpu'] / r['wall']:.0f} % of one CPU, {1e6 * r['cpu'] / r['events']:.0f} µs CPU per event, "
        f"{(r['rss'] - r['idle_rss']) / args.turns:,.0f} KiB per open turn, errors {r['errors']}, "
        f"load {stack.load_average()}",
        flush=True,
    )


if __name__ == "__main__":
    main()
