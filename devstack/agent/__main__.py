"""`python -m devstack.agent`: the reference ACP agent on stdio.

Env: ANTHROPIC_API_KEY (required), ANTHROPIC_BASE_URL (the emulator; unset = the real API),
DEVSTACK_CACHE_TTL (5m | 1h), DEVSTACK_MAX_TOKENS, DEVSTACK_SYSTEM_PROMPT, CLAUDE_CONFIG_DIR
(where transcripts go; default ~/.claude).
"""

from __future__ import annotations

import asyncio
import logging
import sys

from acp import run_agent

from .agent import ReferenceAgent


def main() -> None:
    # stdout carries the protocol; logs go to stderr.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(run_agent(ReferenceAgent()))


if __name__ == "__main__":
    main()
