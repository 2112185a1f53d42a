"""Start the emulator as a subprocess on a free loopback port (for tests and benchmarks)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

_ROOT = Path(__file__).resolve().parents[2]


class EmulatorProcess:
    def __init__(self, *, time_offset: float = 0.0, latency: str = "none", python: str = sys.executable) -> None:
        self.time_offset = time_offset
        self.latency = latency
        self.python = python
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> EmulatorProcess:
        env = {**os.environ, "PYTHONPATH": str(_ROOT), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [
                self.python,
                "-m",
                "devstack.emulator",
                "--port",
                "0",
                "--time-offset",
                str(self.time_offset),
                "--latency",
                self.latency,
            ],
            cwd=_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"emulator exited with {self.proc.wait()}")
            if line.startswith("listening on port "):
                self.port = int(line.rsplit(" ", 1)[1])
                return self
        self.stop()
        raise RuntimeError("emulator did not start in time")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # Admin helpers (loopback only on the server side).
    def _post(self, path: str, body: dict | None = None) -> dict:
        response = httpx.post(self.url + path, json=body or {}, timeout=10)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        self._post("/_emulator/reset")

    def advance(self, seconds: float) -> dict:
        return self._post("/_emulator/advance", {"seconds": seconds})

    def requests(self) -> list[dict]:
        response = httpx.get(self.url + "/_emulator/requests", timeout=10)
        response.raise_for_status()
        return response.json()["requests"]

    def state(self) -> dict:
        response = httpx.get(self.url + "/_emulator/state", timeout=10)
        response.raise_for_status()
        return response.json()
