"""Fixtures for running the real ACP agents (npm) offline against the emulator.

The node_modules fixture runs `npm ci` itself when node_modules is missing or does not
match package-lock.json; the tests skip (with the reason printed) only where node or npm
is not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack.emulator.process import EmulatorProcess

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class RealAgent:
    key: str
    package: str
    # Whether it still answers the legacy session/set_model. Both packages also offer the model
    # as a session config option, which the bridge prefers ("config_option").
    legacy_set_model: bool

    @property
    def entry(self) -> Path:
        return ROOT / "node_modules" / self.package / "dist" / "index.js"

    @property
    def pinned(self) -> str:
        return json.loads((ROOT / "package.json").read_text())["dependencies"][self.package]

    def installed(self) -> str | None:
        manifest = ROOT / "node_modules" / self.package / "package.json"
        return json.loads(manifest.read_text())["version"] if manifest.exists() else None


AGENTS = [
    RealAgent("zed-0.23", "@zed-industries/claude-agent-acp", legacy_set_model=True),
    RealAgent("acp-current", "@agentclientprotocol/claude-agent-acp", legacy_set_model=False),
]


def _stale() -> bool:
    marker = ROOT / "node_modules" / ".package-lock.json"
    if not marker.exists() or marker.stat().st_mtime < (ROOT / "package-lock.json").stat().st_mtime:
        return True
    return any(agent.installed() != agent.pinned or not agent.entry.exists() for agent in AGENTS)


@pytest.fixture(scope="session")
def node_modules() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        reason = f"node/npm not installed (node={node}, npm={npm}): the real agents cannot run"
        print(reason)
        pytest.skip(reason)
    if _stale():
        started = time.monotonic()
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=ROOT, capture_output=True, text=True, timeout=600
        )
        if result.returncode != 0:
            pytest.fail(f"npm ci failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        print(f"npm ci took {time.monotonic() - started:.1f}s")
    return ROOT / "node_modules"


@pytest.fixture(scope="session")
def interop_emulator():
    with EmulatorProcess() as proc:
        yield proc


@pytest.fixture
def emulator(interop_emulator):
    interop_emulator.reset()
    return interop_emulator


def claude_code_env(emulator_url: str, base: Path) -> dict[str, str]:
    """What Claude Code needs to run offline against the emulator."""
    (base / "home").mkdir(parents=True, exist_ok=True)
    (base / "claude").mkdir(parents=True, exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(base / "home"),
        "ANTHROPIC_BASE_URL": emulator_url,
        "ANTHROPIC_API_KEY": "sk-ant-interop-0000",
        "IS_SANDBOX": "1",  # Claude Code refuses to run as root without it
        "CLAUDE_CONFIG_DIR": str(base / "claude"),
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
