"""What the service adds to a model switch.

    .venv/bin/python bench/switch_overhead.py [--switches 300] [--write-docs]

POST /api/chat/model through the service (gunicorn, PostgreSQL: auth, entitlements, the
session's lease, the quote, the ledger row) against the real bridge on loopback, versus
POST /session/set_model sent to that same bridge directly. Calls alternate between the two
paths so that both see the same machine load. Goal: overhead p50 <= 3 ms, p99 <= 10 ms.
A second run on the threaded deployment with a clock on each stage (bench/stages.py) shows where
the time goes.
"""

import argparse
import platform
import sys
import time
from datetime import date
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import stack, stages  # noqa: E402
from bench.docs import write_section  # noqa: E402

MODELS = ("sonnet", "haiku")
LEASE_TAKE = "lease taken, session read (1 statement)"
BRIDGE = "bridge call (httpx)"
LEASE_END = "ledger, model, lease back (1 statement)"


def run(switches: int) -> dict:
    stack.fresh_database()
    try:
        token = stack.manage("set_plan", "bench-user", "pro")
        with stack.bridge() as bridge_url:
            direct = httpx.Client(
                base_url=bridge_url, headers={"Authorization": f"Bearer {stack.BRIDGE_TOKEN}"}, timeout=30
            )
            with stack.service(bridge_url=bridge_url) as service_url:
                api = _client(service_url, token)
                session = stack.started_session(api.post("/api/chat/sessions"))
                key, acp_id = session["sessionKey"], session["sessionId"]
                via_service, via_bridge = _interleaved(api, direct, key, acp_id, switches)
                floors = {name: _timed(api, path, switches) for name, path in
                          (("healthz", "/healthz"), ("session_get", f"/api/chat/sessions/{key}"))}  # fmt: skip
            # Again, on the threaded deployment with a clock on each stage of a request.
            clocked: dict[str, float] = {}
            with stages.timed_service(bridge_url=bridge_url, path="/api/chat/model", into=clocked) as service_url:
                timed_service, _ = _interleaved(_client(service_url, token), direct, key, acp_id, switches)
    finally:
        stack.drop_database()
    service_stats, bridge_stats = stack.summary(via_service), stack.summary(via_bridge)
    return {
        "floors": floors,
        "service": service_stats,
        "bridge": bridge_stats,
        "overhead_p50": service_stats["p50"] - bridge_stats["p50"],
        "overhead_p99": service_stats["p99"] - bridge_stats["p99"],
        "stages": {**clocked, stages.WHOLE: stack.summary(timed_service)["p50"]},
        "load": stack.load_average(),
    }


def _client(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Token {token}"}, timeout=30)


def _interleaved(api, direct, key: str, acp_id: str, switches: int) -> tuple[list[float], list[float]]:
    via_service, via_bridge = [], []
    for i in range(switches + 20):
        model = MODELS[i % 2]
        started = time.perf_counter()
        response = api.post("/api/chat/model", json={"sessionKey": key, "modelId": model})
        service_ms = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, response.text
        # Back to where the service left it, then the same switch straight to the bridge.
        started = time.perf_counter()
        response = direct.post("/session/set_model", json={"sessionId": acp_id, "modelId": MODELS[(i + 1) % 2]})
        bridge_ms = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, response.text
        direct.post("/session/set_model", json={"sessionId": acp_id, "modelId": model})
        if i >= 20:  # warm-up: connections, caches, the agent's JIT-free first calls
            via_service.append(service_ms)
            via_bridge.append(bridge_ms)
    return via_service, via_bridge


def _timed(client: httpx.Client, path: str, count: int) -> dict[str, float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        assert client.get(path).status_code == 200
        times.append((time.perf_counter() - started) * 1000)
    return stack.summary(times)


def report(result: dict, switches: int) -> str:
    s, b, f = result["service"], result["bridge"], result["floors"]
    floor_gap = f["session_get"]["p50"] - f["healthz"]["p50"]
    return f"""`bench/switch_overhead.py`, Python {platform.python_version()} on {platform.machine()} ({date.today()});
the production server as `make serve` runs it (gunicorn with uvicorn workers,
docker/gunicorn.conf.py) on PostgreSQL, the real bridge with the reference agent on loopback,
{switches} switches per path after 20 warm-up calls, the two paths interleaved.

| path | p50 | p99 |
|---|---|---|
| direct: `POST /session/set_model` to the bridge | {b["p50"]:.2f} ms | {b["p99"]:.2f} ms |
| service: `POST /api/chat/model` | {s["p50"]:.2f} ms | {s["p99"]:.2f} ms |
| overhead (service − direct) | {result["overhead_p50"]:.2f} ms | {result["overhead_p99"]:.2f} ms |
| goal | ≤ 3 ms | ≤ 10 ms |

Each service call: token auth (user and subscription joined), the rate limit (one Redis
script), one statement that takes the session's lease and reads the session with its cache
state and recent switches, the quote (~13 µs in process), the bridge
call, then one statement that writes the ledger row and the new model and gives the lease back
(durable commit). Each statement is prepared once per connection: three PostgreSQL round trips
(and Django's health check, a `SELECT 1` before the first on a reused connection) and one to
Redis, with no transaction open across the bridge call.

Where the time goes, on the same gunicorn: `GET /healthz` (Django, no database) takes
{f["healthz"]["p50"]:.2f} ms and `GET /api/chat/sessions/{{key}}` (token auth + one ORM select)
{f["session_get"]["p50"]:.2f} ms at the median: {floor_gap:.1f} ms for DRF, the auth query and one select.
Each stage of a switch, in a second run of {switches} interleaved switches on the threaded WSGI
deployment the service ran on before (bench/gthread.conf.py), whose request path
bench/timed_gunicorn.conf.py clocks (medians; a stage's own time is what its parts leave over):

{stages.table(result["stages"], SWITCH_STAGES)}
Load average while measuring: {result["load"]}.
"""


SWITCH_STAGES = (
    *stages.FRAME,
    ("Django: middleware, DRF dispatch, validation, rendering", stages.DJANGO, (stages.DRF, "view: the switch")),
    *stages.DRF_ROWS,
    ("lease taken with the session's read (1 statement)", LEASE_TAKE, ()),
    ("bridge call (httpx)", BRIDGE, ()),
    ("ledger row, new model, lease back (1 statement)", LEASE_END, ()),
    ("the view's own Python: validation, quote, response", "view: the switch", (LEASE_TAKE, BRIDGE, LEASE_END)),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=stack.DATABASE_HELP)
    parser.add_argument("--switches", type=int, default=300)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    result = run(args.switches)
    text = report(result, args.switches)
    print(text)
    if args.write_docs:
        write_section("Model switch overhead", text)


if __name__ == "__main__":
    main()
