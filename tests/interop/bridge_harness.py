"""Run vm_bridge as a subprocess (its documented CLI) plus a usage receiver standing in for
the backend's /api/internal/usage, which checks the HMAC signature of every batch."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shlex
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class UsageReceiver:
    def __init__(self, token: str) -> None:
        self.token = token
        self.batches: list[dict] = []
        self.bad_signatures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                ts, nonce = self.headers.get("x-mk0r-timestamp", ""), self.headers.get("x-mk0r-nonce", "")
                expected = (
                    "sha256="
                    + hmac.new(receiver.token.encode(), f"{ts}.{nonce}.".encode() + raw, hashlib.sha256).hexdigest()
                )
                if not hmac.compare_digest(expected, self.headers.get("x-mk0r-signature", "")):
                    receiver.bad_signatures += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                receiver.batches.append(json.loads(raw))
                self.send_response(202)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"accepted": true}')

            def log_message(self, *args) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/internal/usage"

    def records(self) -> list[dict]:
        return [r for batch in self.batches for r in batch["records"]]

    def __enter__(self) -> UsageReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


class Bridge:
    def __init__(
        self,
        *,
        agent_cmd: list[str],
        env: dict[str, str],
        workdir: Path,
        usage_url: str,
        extra_agent_env: tuple[str, ...] = (),
    ) -> None:
        self.token = "bridge-token-" + os.urandom(6).hex()
        self.port = free_port()
        self.log_path = workdir / "bridge.log"
        args = [
            sys.executable,
            "-m",
            "vm_bridge",
            "--port",
            str(self.port),
            "--agent-cmd",
            shlex.join(agent_cmd),
            "--token-env",
            "BRIDGE_TOKEN",
            "--usage-url",
            usage_url,
            "--sandbox-id",
            "sbx_interop",
            "--spool-dir",
            str(workdir / "spool"),
            "--claude-config-dir",
            env["CLAUDE_CONFIG_DIR"],
            "--log-level",
            "info",
        ]
        for name in extra_agent_env:
            args += ["--agent-env", name]
        self.args = args
        self.env = {**env, "BRIDGE_TOKEN": self.token, "PYTHONPATH": str(ROOT)}
        self.proc: subprocess.Popen | None = None
        self.http = httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}", headers={"authorization": f"Bearer {self.token}"}, timeout=120
        )

    def start(self, timeout: float = 90.0) -> dict:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bridge exited {self.proc.returncode}: {self.log_tail()}")
            try:
                health = self.http.get("/health", timeout=2)
                if health.status_code == 200:
                    return health.json()
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"bridge not healthy in {timeout}s: {self.log_tail()}")

    def log_tail(self, n: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-n:] if self.log_path.exists() else ""

    def stop(self) -> None:
        self.http.close()
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_log", None):
            self._log.close()

    def post(self, path: str, body: dict) -> httpx.Response:
        return self.http.post(path, json=body)

    def prompt(self, session_id: str, text: str) -> list[tuple[str, dict]]:
        """One turn: the SSE events as (event, data) pairs, up to `done` or `error`."""
        events: list[tuple[str, dict]] = []
        with self.http.stream("POST", "/session/prompt", json={"sessionId": session_id, "prompt": text}) as r:
            assert r.status_code == 200, r.read()
            event = None
            for line in r.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event:
                    events.append((event, json.loads(line[6:])))
        return events
