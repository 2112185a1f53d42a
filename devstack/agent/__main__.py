"""`python -m devstack.agent`: the reference ACP agent on stdio.

Env: ANTHROPIC_API_KEY (required), ANTHROPIC_BASE_URL (the emulator; unset = the real API),
DEVSTACK_CACHE_TTL (5m | 1h), DEVSTACK_MAX_TOKENS, DEVSTACK_SYSTEM_PROMPT, CLAUDE_CONFIG_DIR
(where transcripts go; default ~/.claude), DEVSTACK_MODEL_MAP (as --models).

Options: --models haiku=claude-haiku-5-5,sonnet=claude-sonnet-5-5: which API model each picker id
runs (the rest keep the built-in map).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from acp import run_agent

from . import options
from .agent import ReferenceAgent


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack.agent")
    parser.add_argument(
        "--models",
        default=os.environ.get("DEVSTACK_MODEL_MAP", ""),
        help="picker id -> API model, e.g. haiku=claude-haiku-5-5,sonnet=claude-sonnet-5-5",
    )
    args = parser.parse_args()
    try:
        model_map = options.parse_model_map(args.models)
    except ValueError as exc:
        parser.error(str(exc))
    # stdout carries the protocol; logs go to stderr.
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    asyncio.run(run_agent(ReferenceAgent(model_map=model_map)))


if __name__ == "__main__":
    main()
