"""Command line: `python -m vm_bridge --port 3002 --agent-cmd "claude-agent-acp" ...`."""

import argparse
import asyncio
import contextlib
import logging
import os
import shlex
import sys
from pathlib import Path

from .config import PERMISSION_POLICIES, Config

logger = logging.getLogger("vm_bridge")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m vm_bridge", description="HTTP <-> ACP bridge for one sandbox VM.")
    p.add_argument("--port", type=int, default=3002)
    p.add_argument("--host", default="127.0.0.1", help="0.0.0.0 inside an E2B sandbox")
    p.add_argument("--agent-cmd", required=True, help='agent command line, e.g. "claude-agent-acp"')
    p.add_argument(
        "--agent-env",
        action="append",
        default=[],
        metavar="NAME",
        help="pass this environment variable through to the agent (repeatable)",
    )
    p.add_argument("--token-env", default="BRIDGE_TOKEN", help="environment variable holding the bearer token")
    p.add_argument("--usage-url", help="backend usage endpoint (…/api/internal/usage)")
    p.add_argument("--sandbox-id", help="this sandbox's id, sent with usage records")
    p.add_argument("--spool-dir", type=Path, help="where unsent usage batches wait")
    p.add_argument("--permission-policy", choices=PERMISSION_POLICIES, default="allow")
    p.add_argument("--agent-timeout", type=float, default=30.0, help="seconds for every agent call")
    p.add_argument("--prompt-timeout", type=float, default=600.0, help="seconds for one prompt turn")
    p.add_argument("--cwd-root", type=Path, help="session working directories must lie inside it")
    p.add_argument(
        "--claude-config-dir",
        type=Path,
        help="where Claude Code keeps transcripts (default $CLAUDE_CONFIG_DIR or ~/.claude)",
    )
    p.add_argument(
        "--relay-max-attempts",
        type=int,
        default=6,
        help="5xx answers a usage batch gets before it is moved aside, once a later batch got through",
    )
    p.add_argument("--log-level", default="info")
    # Tuning knobs, mostly for tests.
    p.add_argument("--relay-backoff", type=float, default=0.5, help=argparse.SUPPRESS)
    p.add_argument("--relay-backoff-max", type=float, default=60.0, help=argparse.SUPPRESS)
    p.add_argument("--restart-backoff", type=float, default=0.5, help=argparse.SUPPRESS)
    p.add_argument("--transcript-wait", type=float, default=1.5, help=argparse.SUPPRESS)
    p.add_argument("--start-wait", type=float, default=10.0, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def build_config(args: argparse.Namespace) -> Config:
    token = os.environ.get(args.token_env, "")
    if not token.strip():
        raise SystemExit(f"vm_bridge: refusing to start without a token in ${args.token_env}")
    agent_cmd = shlex.split(args.agent_cmd)
    if not agent_cmd:
        raise SystemExit("vm_bridge: --agent-cmd is empty")
    if args.usage_url and not args.sandbox_id:
        raise SystemExit("vm_bridge: --usage-url needs --sandbox-id")
    claude_dir = args.claude_config_dir or (
        Path(os.environ["CLAUDE_CONFIG_DIR"]) if os.environ.get("CLAUDE_CONFIG_DIR") else None
    )
    config = Config(
        token=token.strip(),
        agent_cmd=agent_cmd,
        host=args.host,
        port=args.port,
        agent_env={name: os.environ[name] for name in args.agent_env if name in os.environ},
        agent_timeout=args.agent_timeout,
        prompt_timeout=args.prompt_timeout,
        start_wait=args.start_wait,
        permission_policy=args.permission_policy,
        cwd_root=args.cwd_root,
        usage_url=args.usage_url,
        sandbox_id=args.sandbox_id,
        claude_config_dir=claude_dir,
        relay_backoff=args.relay_backoff,
        relay_backoff_max=args.relay_backoff_max,
        relay_max_attempts=args.relay_max_attempts,
        restart_backoff=args.restart_backoff,
        transcript_wait=args.transcript_wait,
    )
    if args.spool_dir:
        config.spool_dir = args.spool_dir
    return config


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = build_config(args)
    # Imported after the checks above so a misconfigured start fails at once.
    import uvicorn

    from .app import create_app

    class Server(uvicorn.Server):
        """On SIGTERM/SIGINT, first cancel running turns so their streams end, then stop as usual."""

        def handle_exit(self, sig, frame) -> None:  # noqa: ANN001 - uvicorn's signature
            with contextlib.suppress(RuntimeError):  # no running loop: nothing to cancel yet
                asyncio.get_running_loop().call_soon_threadsafe(app.state.bridge.begin_shutdown)
            super().handle_exit(sig, frame)

    app = create_app(config)
    server_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        log_level=args.log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    Server(server_config).run()


if __name__ == "__main__":
    main()
