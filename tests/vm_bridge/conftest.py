"""Real processes: the bridge runs as `python -m vm_bridge` with a real ACP agent over stdio."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTED_AGENT = Path(__file__).parent / "fake_agents" / "scripted_agent.py"
TOKEN = "test-bridge-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def agent_cmd(*flags: str) -> str:
    return " ".join([sys.executable, str(SCRIPTED_AGENT), *flags])


class Bridge:
    """One bridge subprocess; stderr goes to a log file the tests can read."""

    def __init__(
        self,
        tmp: Path,
        *extra: str,
        agent: str | None = None,
        spool: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.home = tmp / "home"
        self.claude_dir = self.home / ".claude"
        self.app_dir = tmp / "app"
        self.app_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = tmp / f"bridge-{self.port}.log"
        self.spool = spool or tmp / "spool"
        cmd = [
            sys.executable,
            "-m",
            "vm_bridge",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--agent-cmd",
            agent or agent_cmd(),
            "--spool-dir",
            str(self.spool),
            "--restart-backoff",
            "0.1",
            "--transcript-wait",
            "0.6",
            *extra,
        ]
        full_env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.home),
            "CLAUDE_CONFIG_DIR": str(self.claude_dir),
            "BRIDGE_TOKEN": TOKEN,
            "PYTHONPATH": str(REPO),
            **(env or {}),
        }
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=full_env, stdout=self._log, stderr=subprocess.STDOUT)
        self.client = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=20)
        try:
            self.wait_healthy()
        except BaseException:
            self.stop()  # a bridge that never became healthy is not left running after the test
            raise

    def wait_healthy(self, timeout: float = 60.0) -> dict:
        # The agent's start (Python importing the ACP SDK) can take well over 20 s on a loaded
        # 2-CPU machine; a healthy bridge answers within a second of it.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bridge exited: {self.log()}")
            try:
                r = self.client.get("/health")
                if r.status_code == 200:
                    return r.json()
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"bridge not healthy: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def post(self, path: str, body: dict, **kw) -> httpx.Response:
        return self.client.post(path, json=body, **kw)

    def new_session(self, **body) -> dict:
        r = self.post("/session/new", {"cwd": str(self.app_dir), **body})
        assert r.status_code == 200, r.text
        return r.json()

    def prompt(self, session_id: str, text: str) -> list[tuple[str, dict]]:
        events = []
        with self.client.stream("POST", "/session/prompt", json={"sessionId": session_id, "prompt": text}) as r:
            assert r.status_code == 200, r.read()
            assert r.headers["content-type"].startswith("text/event-stream")
            event = None
            for line in r.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    events.append((event, json.loads(line[6:])))
        return events

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.client.close()
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def start_bridge(tmp_path):
    started: list[Bridge] = []

    def start(*extra: str, sub: str = "b", **kw) -> Bridge:
        bridge = Bridge(tmp_path / sub, *extra, **kw)
        started.append(bridge)
        return bridge

    yield start
    for bridge in started:
        bridge.stop()


class Receiver:
    """The backend's usage endpoint: records every POST, answers from a script (default 202),
    or from `status_for(body)` when set (a status, or a status and a JSON answer)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/api/internal/usage"
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        self.status_for = None
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    answer = {}
                    if receiver.status_for is not None:
                        status = receiver.status_for(body)
                        if isinstance(status, tuple):
                            status, answer = status
                    else:
                        status = receiver.statuses.pop(0) if receiver.statuses else 202
                    receiver.requests.append(
                        {
                            "headers": dict(self.headers),
                            "body": body,
                            "status": status,
                            "at": time.monotonic(),
                        }
                    )
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps(answer).encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def accepted_records(self) -> list[dict]:
        with self.lock:
            return [rec for r in self.requests if 200 <= r["status"] < 300 for rec in json.loads(r["body"])["records"]]

    def wait_for(self, predicate, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError(f"receiver never saw it; got {self.requests}")


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()
