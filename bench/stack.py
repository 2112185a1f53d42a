"""What the service benchmarks run against: a PostgreSQL database of their own, the real
bridge (vm_bridge + the devstack reference agent) on loopback, and gunicorn serving the
service. Everything is started here and stopped on exit.

Every benchmark that needs a database takes it from here: BENCH_DATABASE_URL (default
DEFAULT_DATABASE_URL), created afresh at the start and dropped at the end, so it must name a
database nothing else uses; two benchmarks run side by side each need their own. Redis:
BENCH_REDIS_URL (default DEFAULT_REDIS_URL).
"""

import collections
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/mk0r_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)
# The same server's maintenance database, from which the bench database is created and dropped.
PG_ADMIN_URL = urlunsplit(urlsplit(DATABASE_URL)._replace(path="/postgres"))
BENCH_DB = urlsplit(DATABASE_URL).path.lstrip("/")
BRIDGE_TOKEN = "bench-bridge-token"
# For each benchmark's --help.
DATABASE_HELP = (
    f"Database: BENCH_DATABASE_URL (now {DATABASE_URL}; default {DEFAULT_DATABASE_URL}), created afresh "
    f"and dropped at the end: give two benchmarks run side by side a database each. "
    f"Redis: BENCH_REDIS_URL (now {REDIS_URL})."
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def summary(values_ms: list[float]) -> dict[str, float]:
    return {"p50": statistics.median(values_ms), "p99": percentile(values_ms, 99), "n": len(values_ms)}


def load_average() -> str:
    return f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"


def _env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mk0r.settings.base",
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "LOG_LEVEL": "WARNING",
        # One user drives the whole load: per-user rate limits would measure the limiter.
        "THROTTLE_MODEL_SWITCH": "1000000/min",
        "THROTTLE_QUOTE": "1000000/min",
        "THROTTLE_SESSION_START": "1000000/min",
        **extra,
    }


def fresh_database() -> None:
    """The bench database, empty and migrated."""
    drop_database()
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DB)))
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=_env(), check=True)


def drop_database() -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB)))


def manage(*args: str) -> str:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=_env(), check=True, capture_output=True, text=True
    ).stdout.strip()


def _wait_http(url: str, headers: dict | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, headers=headers, timeout=1.0).status_code < 500:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@contextlib.contextmanager
def _process(cmd: list[str], env: dict[str, str], *, log: Path | None = None) -> Iterator[subprocess.Popen]:
    """`cmd` in a process group of its own; its stderr (where the service logs, tracebacks
    included) goes to `log` when given."""
    with contextlib.ExitStack() as stack:
        stderr = stack.enter_context(log.open("ab")) if log else subprocess.DEVNULL
        process = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
        )
        try:
            yield process
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def bridge() -> Iterator[str]:
    """The real bridge with the reference agent; yields its URL."""
    port = free_port()
    home = Path(tempfile.mkdtemp(prefix="mk0r-bench-"))
    env = {
        **os.environ,
        "BRIDGE_TOKEN": BRIDGE_TOKEN,
        "HOME": str(home),
        "CLAUDE_CONFIG_DIR": str(home / ".claude"),
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",
        "ANTHROPIC_API_KEY": "bench",
    }
    cmd = [
        sys.executable,
        "-m",
        "vm_bridge",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--agent-cmd",
        f"{sys.executable} -m devstack.agent",
        "--token-env",
        "BRIDGE_TOKEN",
    ]
    url = f"http://127.0.0.1:{port}"
    try:
        with _process(cmd, env):
            _wait_http(f"{url}/health", headers={"Authorization": f"Bearer {BRIDGE_TOKEN}"})
            yield url
    finally:
        shutil.rmtree(home, ignore_errors=True)


# The production server (make serve), and the threaded WSGI deployment it replaced.
ASGI = ("mk0r.asgi:application", "docker/gunicorn.conf.py")
GTHREAD = ("mk0r.wsgi:application", "bench/gthread.conf.py")


@contextlib.contextmanager
def service(
    *, bridge_url: str, server: tuple[str, str] = ASGI, log: Path | None = None, **extra_env: str
) -> Iterator[str]:
    """gunicorn serving the service on the bench database, attached to `bridge_url`, as `make serve`
    runs it (docker/gunicorn.conf.py: uvicorn workers, keep-alive, access log), or with `server`
    another (app, config) pair; only the address differs. `log`: a file for the server's stderr
    (gunicorn's and the service's log records, with their tracebacks)."""
    app, config = server
    env = _env(
        SANDBOX_PROVIDER="static",
        BRIDGE_STATIC_URL=bridge_url,
        BRIDGE_STATIC_TOKEN=BRIDGE_TOKEN,
        LOCAL_SANDBOX_ROOT=tempfile.mkdtemp(prefix="mk0r-bench-sbx-"),
        **extra_env,
    )
    with _gunicorn(app, env, ready_path="/api/chat/sessions", config=config, log=log) as url:
        yield url


def started_session(answer: httpx.Response) -> dict:
    """The body of a `POST /api/chat/sessions` answer; any other answer stops the run, saying what
    it was (the server's log for the run has the rest)."""
    if answer.status_code != 201:
        raise SystemExit(f"a session could not be started: {answer.status_code} {answer.text[:300]}")
    return answer.json()


@contextlib.contextmanager
def bare_service() -> Iterator[str]:
    """bench/bare_wsgi.py on the threaded WSGI settings: what serving any request costs there."""
    # Thousands of requests a second: no worker recycling in the middle of the measurement.
    no_recycling = ("--max-requests", "0")
    with _gunicorn(
        "bench.bare_wsgi:application", dict(os.environ), ready_path="/", extra=no_recycling, config=GTHREAD[1]
    ) as url:
        yield url


@contextlib.contextmanager
def _gunicorn(
    app: str,
    env: dict[str, str],
    *,
    ready_path: str,
    extra: tuple[str, ...] = (),
    config: str = ASGI[1],
    log: Path | None = None,
) -> Iterator[str]:
    port = free_port()
    cmd = [sys.executable, "-m", "gunicorn", "--config", config, "--bind", f"127.0.0.1:{port}", *extra, app]
    url = f"http://127.0.0.1:{port}"
    with _process(cmd, env, log=log):
        _wait_http(f"{url}{ready_path}")
        yield url


def server_errors(log: Path) -> collections.Counter:
    """The server's ERROR records and the exceptions its tracebacks end with, counted."""
    found: collections.Counter = collections.Counter()
    in_traceback = False
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("Traceback (most recent call last):"):
            in_traceback = True
        elif in_traceback and line and not line[0].isspace():
            # The exception's own line ends the traceback (a chained one starts another).
            if not line.startswith(("During handling", "The above exception")):
                found[f"exception: {line[:200]}"] += 1
                in_traceback = False
        elif " ERROR " in line:
            found[f"log: {line.split(' ERROR ', 1)[1].split(' [', 1)[0]}"] += 1
    return found
