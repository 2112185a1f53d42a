"""Model-switch round trip through the bridge (HTTP) versus the same ACP call made directly.

    .venv/bin/python bench/bridge.py [--n 300] [--write-docs]

Both sides drive the same agent (the reference agent from devstack/agent, or the scripted
test agent when that is missing): the direct side with the ACP SDK over stdio
(`session/set_config_option`), the bridge side with `POST /session/set_model` on a keep-alive
connection, which the bridge turns into that same call. Prints p50/p99 of both and the ratio,
and writes the "## Bridge" section of docs/PERFORMANCE.md.
"""

import argparse
import asyncio
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import httpx
from acp import spawn_agent_process

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.docs import write_section  # noqa: E402

MODELS = ("haiku", "sonnet")
TOKEN = "bench-token"


def agent_command() -> tuple[list[str], str]:
    if (REPO / "devstack" / "agent" / "__main__.py").exists():
        return [sys.executable, "-m", "devstack.agent"], "reference agent (devstack/agent)"
    fake = REPO / "tests" / "vm_bridge" / "fake_agents" / "scripted_agent.py"
    return [sys.executable, str(fake)], "scripted test agent"


def agent_env(home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "CLAUDE_CONFIG_DIR": str(home / ".claude"),
        "PYTHONPATH": str(REPO),
        # set_model never reaches the model API; the reference agent only wants a key present.
        "ANTHROPIC_API_KEY": "bench-unused",
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",
    }


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class _Client:
    async def session_update(self, session_id, update, **kwargs):
        return None

    async def request_permission(self, *args, **kwargs):
        return {"outcome": {"outcome": "cancelled"}}


async def direct(cmd: list[str], home: Path, n: int) -> list[float]:
    async with spawn_agent_process(_Client(), cmd[0], *cmd[1:], env=agent_env(home), cwd=REPO) as (conn, _proc):
        await conn.initialize(protocol_version=1)
        session = await conn.new_session(cwd=str(home / "app"), mcp_servers=[])
        times = []
        for i in range(n + 20):
            started = time.perf_counter()
            await conn.set_config_option(config_id="model", session_id=session.session_id, value=MODELS[i % 2])
            if i >= 20:  # warm-up excluded
                times.append(time.perf_counter() - started)
        return times


def through_bridge(cmd: list[str], home: Path, n: int) -> list[float]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**agent_env(home), "BRIDGE_TOKEN": TOKEN}
    bridge = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vm_bridge",
            "--port",
            str(port),
            "--agent-cmd",
            " ".join(cmd),
            "--log-level",
            "warning",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        ) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("bridge did not start")
                time.sleep(0.05)
            sid = client.post("/session/new", json={"cwd": str(home / "app")}).json()["sessionId"]
            times = []
            for i in range(n + 20):
                started = time.perf_counter()
                r = client.post("/session/set_model", json={"sessionId": sid, "modelId": MODELS[i % 2]})
                elapsed = time.perf_counter() - started
                assert r.status_code == 200, r.text
                if i >= 20:
                    times.append(elapsed)
            return times
    finally:
        bridge.terminate()
        bridge.wait(15)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    cmd, label = agent_command()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        (home / "app").mkdir()
        direct_times = asyncio.run(direct(cmd, home, args.n))
        bridge_times = through_bridge(cmd, home, args.n)

    ms = 1000.0
    d50, d99 = pct(direct_times, 0.5) * ms, pct(direct_times, 0.99) * ms
    b50, b99 = pct(bridge_times, 0.5) * ms, pct(bridge_times, 0.99) * ms
    load = os.getloadavg()[0]
    cpus = os.cpu_count()
    print(f"agent: {label}; {args.n} switches each side")
    print(
        f"direct ACP over stdio : p50 {d50:.3f} ms  p99 {d99:.3f} ms  mean {statistics.mean(direct_times) * ms:.3f} ms"
    )
    print(
        f"through the bridge    : p50 {b50:.3f} ms  p99 {b99:.3f} ms  mean {statistics.mean(bridge_times) * ms:.3f} ms"
    )
    print(f"ratio bridge/direct   : p50 {b50 / d50:.2f}x  p99 {b99 / d99:.2f}x; added p50 {b50 - d50:.3f} ms")
    if not args.write_docs:
        return
    write_section(
        "Bridge",
        f"""
`bench/bridge.py`, Python {platform.python_version()} on {platform.machine()} ({date.today().isoformat()}); {label},
{args.n} model switches alternating {MODELS[0]}/{MODELS[1]} after 20 warm-up calls, one session.

| path | p50 | p99 |
|---|---|---|
| direct: `session/set_config_option` over stdio with the ACP SDK | {d50:.3f} ms | {d99:.3f} ms |
| bridge: `POST /session/set_model` (HTTP keep-alive, loopback) | {b50:.3f} ms | {b99:.3f} ms |
| ratio bridge / direct | {b50 / d50:.2f}x | {b99 / d99:.2f}x |

The bridge adds {b50 - d50:.2f} ms at the median: one HTTP request parse, the bearer check,
the session lookup and one JSON-RPC round trip on the same stdio pipe. A switch is dwarfed by
the next turn's model latency either way. Load average while measuring: {load:.1f} on {cpus} CPUs;
on a shared machine the figures move by a factor of two between runs.
""",
    )
    print("wrote the Bridge section of docs/PERFORMANCE.md")


if __name__ == "__main__":
    main()
