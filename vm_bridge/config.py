"""Runtime settings of one bridge process, filled from the command line."""

from dataclasses import dataclass, field
from pathlib import Path

# Variables the agent may need; everything else in the bridge's environment (notably the
# bridge token) stays out of the agent's reach.
AGENT_ENV_PASSTHROUGH = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "CLAUDE_CONFIG_DIR",
    "HOME",
    "PATH",
    "IS_SANDBOX",
    "LANG",
    "TZ",
)

PERMISSION_POLICIES = ("allow", "allow_once", "deny")


@dataclass
class Config:
    token: str
    agent_cmd: list[str]
    host: str = "127.0.0.1"
    port: int = 3002
    agent_env: dict[str, str] = field(default_factory=dict)
    agent_timeout: float = 30.0
    prompt_timeout: float = 600.0
    # Starting node and Claude Code takes seconds; `initialize` gets its own, longer limit.
    init_timeout: float = 60.0
    # How long a call waits for a (re)starting agent before answering 503 agent_starting.
    start_wait: float = 10.0
    permission_policy: str = "allow"
    cwd_root: Path | None = None
    max_body: int = 64 * 1024
    usage_url: str | None = None
    sandbox_id: str | None = None
    spool_dir: Path = field(default_factory=lambda: Path.home() / ".local/state/vm_bridge/spool")
    claude_config_dir: Path | None = None
    relay_backoff: float = 0.5
    relay_backoff_max: float = 60.0
    # 5xx answers a usage batch may get before it stops holding up the batches behind it.
    relay_max_attempts: int = 6
    # Claude Code flushes transcript lines a moment after the turn ends; wait this long for them.
    transcript_wait: float = 1.5
    restart_backoff: float = 0.5
    restart_backoff_max: float = 30.0
