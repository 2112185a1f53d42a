"""Sandboxes on this machine: the bridge runs as a subprocess on a free loopback port.

Each sandbox gets a folder under LOCAL_SANDBOX_ROOT (its working directory, its
Claude config with the transcripts, the relay spool, a log). The agent talks to
the real Anthropic API when ANTHROPIC_API_KEY is set, otherwise to the devstack
emulator, which is started once for the machine and shared.
"""

import contextlib
import fcntl
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from django.conf import settings

from .base import Sandbox, SandboxError, httpx_quiet, wait_for_bridge

BRIDGE_START_TIMEOUT = 30.0
EMULATOR_START_TIMEOUT = 15.0
# Popen handles of the bridges this process started, so that finished ones are reaped.
_children: list[subprocess.Popen] = []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _root() -> Path:
    root = Path(settings.LOCAL_SANDBOX_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    return root


def _spawn(cmd: list[str], *, env: dict[str, str], log_path: Path) -> subprocess.Popen:
    for child in list(_children):
        if child.poll() is not None:
            _children.remove(child)
    with open(log_path, "ab") as log:
        # A session of its own: the process (and the agent it spawns) outlives a dev-server reload
        # and is stopped as a group.
        process = subprocess.Popen(
            cmd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=settings.BASE_DIR,
            start_new_session=True,
        )
    _children.append(process)
    return process


def _stop_group(pid: int, *, grace: float = 5.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            os.killpg(pid, 0)  # raises ProcessLookupError once the group is gone
            _reap(pid)
            time.sleep(0.05)
        os.killpg(pid, signal.SIGKILL)
    _reap(pid)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def anthropic_env() -> dict[str, str]:
    """Where the agent's Messages API calls go: the real API with a key, else the emulator."""
    if os.environ.get("ANTHROPIC_API_KEY") and not os.environ.get("ANTHROPIC_BASE_URL"):
        return {"ANTHROPIC_API_KEY": os.environ["ANTHROPIC_API_KEY"]}
    base_url = os.environ.get("ANTHROPIC_BASE_URL") or emulator_url()
    return {
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": os.environ.get("ANTHROPIC_API_KEY", "devstack"),
    }


def _emulator_alive(url: str) -> bool:
    try:
        return httpx.get(f"{url}/v1/models", headers={"x-api-key": "devstack"}, timeout=1.0).status_code == 200
    except httpx.TransportError:
        return False


def emulator_url() -> str:
    """The machine's shared emulator, started on first use (a file lock keeps it to one)."""
    state_path = _root() / "emulator.json"
    with open(_root() / "emulator.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if state_path.exists():
            url = json.loads(state_path.read_text())["url"]
            if _emulator_alive(url):
                return url
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        process = _spawn(
            [
                *(sys.executable, "-m", "devstack.emulator", "--host", "127.0.0.1", "--port", str(port)),
                *("--latency", settings.EMULATOR_LATENCY),
            ],
            env=_base_env(),
            log_path=_root() / "emulator.log",
        )
        deadline = time.monotonic() + EMULATOR_START_TIMEOUT
        with httpx_quiet():
            while not _emulator_alive(url):
                if time.monotonic() > deadline:
                    raise SandboxError("The devstack emulator did not start.", permanent=False)
                time.sleep(0.1)
        state_path.write_text(json.dumps({"url": url, "pid": process.pid}))
        return url


def emulator_stop() -> None:
    """Stop the machine's shared emulator, if this root started one."""
    state_path = _root() / "emulator.json"
    if state_path.exists():
        _stop_group(json.loads(state_path.read_text())["pid"])
        state_path.unlink()


def local_stack_stop() -> None:
    """Stop every bridge under LOCAL_SANDBOX_ROOT and the emulator: sessions left open included."""
    provider = LocalProvider()
    for pid_file in _root().glob("*/bridge.pid"):
        provider.stop(sandbox_id=pid_file.parent.name)
    emulator_stop()


def _base_env() -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "TZ", "SYSTEMROOT", "VIRTUAL_ENV")
    return {k: os.environ[k] for k in keep if k in os.environ}


class LocalProvider:
    name = "local"

    def start(self, *, session_key: str, user_id: int) -> Sandbox:  # noqa: ARG002
        sandbox_id = f"local-{secrets.token_hex(6)}"
        home = _root() / sandbox_id
        cwd = home / "app"
        cwd.mkdir(parents=True)
        port = free_port()
        token = secrets.token_urlsafe(32)
        agent_cmd = settings.LOCAL_AGENT_CMD or f"{sys.executable} -m devstack.agent"
        env = {
            **_base_env(),
            **anthropic_env(),
            "HOME": str(home),
            "CLAUDE_CONFIG_DIR": str(home / ".claude"),
            "IS_SANDBOX": "1",
            "BRIDGE_TOKEN": token,
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
            agent_cmd,
            "--token-env",
            "BRIDGE_TOKEN",
            "--usage-url",
            f"{settings.PUBLIC_BASE_URL.rstrip('/')}/api/internal/usage",
            "--sandbox-id",
            sandbox_id,
            "--spool-dir",
            str(home / "spool"),
        ]
        try:
            process = _spawn(cmd, env=env, log_path=home / "bridge.log")
        except OSError as exc:
            raise SandboxError(f"Could not start the bridge: {exc}", permanent=True) from exc
        (home / "bridge.pid").write_text(str(process.pid))
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for_bridge(url, token, timeout=BRIDGE_START_TIMEOUT)
        except SandboxError:
            _stop_group(process.pid)
            raise
        return Sandbox(sandbox_id=sandbox_id, bridge_url=url, bridge_token=token, cwd=str(cwd))

    def stop(self, *, sandbox_id: str) -> None:
        pid_file = _root() / sandbox_id / "bridge.pid"
        if pid_file.exists():
            _stop_group(int(pid_file.read_text()))
            pid_file.unlink()

    def exists(self, *, sandbox_id: str) -> bool:
        """The bridge's process group is alive. Stopping the local stack (as `make run` does when
        it exits) removes the pid file; a bridge that died leaves it behind with no process."""
        pid_file = _root() / sandbox_id / "bridge.pid"
        try:
            pid = int(pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return False
        _reap(pid)  # a bridge of this process that died is a zombie until reaped
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # a process group of another user: it exists
        return True

    def bridge_headers(self, *, access_token: str) -> dict[str, str]:  # noqa: ARG002
        return {}
