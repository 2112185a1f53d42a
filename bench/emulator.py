"""Emulator throughput: requests/s of a realistic cached chat loop from N concurrent clients.

    .venv/bin/python bench/emulator.py [--clients 8] [--seconds 5] [--stream] [--write-docs]

Each client is one workspace (its own API key) running a conversation like the reference
agent's: a ~2,000-token system prompt, top-level automatic caching, the history growing by
the reply and a new user message each turn, a fresh conversation every 30 turns. Client
and emulator share the machine's cores, so the figure is a floor for the emulator alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.docs import write_section  # noqa: E402
from devstack.emulator.process import EmulatorProcess  # noqa: E402

SYSTEM = " ".join(["You build small web apps; answer with concrete code and short notes."] * 150)
TURNS_PER_CONVERSATION = 30


async def _client(http: httpx.AsyncClient, key: str, deadline: float, stream: bool, stats: dict) -> None:
    conversation = 0
    while time.perf_counter() < deadline:
        conversation += 1
        messages: list[dict] = []
        for turn in range(TURNS_PER_CONVERSATION):
            if time.perf_counter() >= deadline:
                return
            messages.append(
                {
                    "role": "user",
                    "content": f"conv {conversation} turn {turn}: add feature {turn} "
                    "to the app, with tests and a short explanation",
                }
            )
            body = {
                "model": "claude-sonnet-4-6",
                "max_tokens": 512,
                "system": SYSTEM,
                "messages": messages,
                "cache_control": {"type": "ephemeral"},
                "stream": stream,
            }
            started = time.perf_counter()
            response = await http.post("/v1/messages", json=body, headers={"x-api-key": key})
            response.raise_for_status()
            if stream:
                text = response.text
                reply = "".join(re.findall(r'"text_delta","text":"((?:[^"\\]|\\.)*)"', text))
            else:
                data = response.json()
                reply = data["content"][0]["text"]
                usage = data["usage"]
                stats["read"] += usage["cache_read_input_tokens"]
                stats["total"] += (
                    usage["input_tokens"] + usage["cache_creation_input_tokens"] + usage["cache_read_input_tokens"]
                )
            stats["latencies"].append(time.perf_counter() - started)
            messages.append({"role": "assistant", "content": reply})


async def _run(url: str, clients: int, seconds: float, stream: bool) -> dict:
    stats = {"latencies": [], "read": 0, "total": 0}
    # One connection per client: a shared httpx pool costs the load generator more CPU than
    # the emulator spends at 32 clients.
    https = [httpx.AsyncClient(base_url=url, timeout=60) for _ in range(clients)]
    try:
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(
            *(_client(http, f"bench-key-{i}", deadline, stream, stats) for i, http in enumerate(https))
        )
        elapsed = time.perf_counter() - started
    finally:
        for http in https:
            await http.aclose()
    latencies = sorted(stats["latencies"])
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": latencies[int(len(latencies) * 0.95) - 1] * 1000,
        "hit_ratio": stats["read"] / stats["total"] if stats["total"] else None,
    }


def emulator_requests_per_second(clients: int = 8, seconds: float = 5.0, stream: bool = False) -> dict:
    """Start an emulator, drive it with `clients` concurrent chat loops, return the figures."""
    with EmulatorProcess() as emulator:
        asyncio.run(_run(emulator.url, clients, 0.5, stream))  # warm-up: imports, first connections
        emulator.reset()
        cpu_before = _cpu_seconds(emulator.proc.pid)
        result = asyncio.run(_run(emulator.url, clients, seconds, stream))
        cpu_after = _cpu_seconds(emulator.proc.pid)
    if cpu_before is not None and cpu_after is not None and result["requests"]:
        # The emulator's own cost, free of the load generator it shares the machine with.
        result["emulator_cpu_ms"] = (cpu_after - cpu_before) * 1000 / result["requests"]
    else:
        result["emulator_cpu_ms"] = None
    return result


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    rows = []
    for stream in (False, True):
        for clients in args.clients:
            r = emulator_requests_per_second(clients=clients, seconds=args.seconds, stream=stream)
            rows.append((clients, stream, r))
            hit = f"{r['hit_ratio']:.1%}" if r["hit_ratio"] is not None else "n/a"
            cpu = f"{r['emulator_cpu_ms']:.2f}" if r["emulator_cpu_ms"] is not None else "n/a"
            print(
                f"clients={clients:3} stream={stream!s:5} {r['rps']:8.1f} req/s  p50={r['p50_ms']:.1f} ms "
                f"p95={r['p95_ms']:.1f} ms  cache hit={hit}  emulator CPU {cpu} ms/request "
                f"({r['requests']} requests)",
                flush=True,
            )
    lines = [
        f"`bench/emulator.py`: `emulator_requests_per_second()`, Python {platform.python_version()} on "
        f"{platform.machine()} ({time.strftime('%Y-%m-%d')}), {os.cpu_count()} CPUs shared by the emulator "
        "(one uvicorn process) and the load generator (httpx, asyncio).",
        "",
        "Load: each client is one workspace running a cached chat loop on claude-sonnet-4-6 "
        "(~2,000-token system prompt, top-level automatic caching, history growing each turn, "
        f"a new conversation every {TURNS_PER_CONVERSATION} turns), {args.seconds:g} s per row.",
        "",
        "| clients | streaming | requests/s | p50 ms | p95 ms | cache-read share of input | emulator CPU ms/request |",
        "|---|---|---|---|---|---|---|",
    ]
    for clients, stream, r in rows:
        hit = f"{r['hit_ratio']:.1%}" if r["hit_ratio"] is not None else "(not parsed)"
        cpu = f"{r['emulator_cpu_ms']:.2f}" if r["emulator_cpu_ms"] is not None else "n/a"
        lines.append(
            f"| {clients} | {'yes' if stream else 'no'} | {r['rps']:,.0f} | {r['p50_ms']:.1f} | "
            f"{r['p95_ms']:.1f} | {hit} | {cpu} |"
        )
    lines += [
        "",
        f"Load average after measuring: {os.getloadavg()[0]:.1f}. The load generator (httpx) spends more CPU",
        "per request than the emulator, so requests/s is bounded by the client on 2 cores; the last column",
        "is the emulator's own CPU per request (1000 / it = requests/s one core of emulator can serve).",
        "Per request the emulator hashes every block of the prompt (text token counts are memoized), so",
        "cost grows with the conversation; the figures are for the mix above.",
    ]
    print("\n".join(lines))
    if args.write_docs:
        write_section("Emulator", "\n".join(lines))


if __name__ == "__main__":
    main()
