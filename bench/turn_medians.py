"""Median cache write and output per warm request of the real Claude Code transcripts.

    .venv/bin/python -m bench.turn_medians [DIR]   (default ../shared/data/claude-code-logs)

The quote's steady state (`billing.quotes.engine.LOGGED_TURN`) uses these figures for a session
that has no warm turn of its own yet. Counted as the quote counts a session's own turns
(`billing.quotes.switch_context`): main-chain requests only (sub-agents run conversations of their
own) that read the cache (a warm turn; a cold one writes the whole prompt), each request once
(the line with the largest output of its `requestId`, else `message.id`), Claude Code's
`<synthetic>` lines left out; the lower median.
"""

import json
import sys
from pathlib import Path
from statistics import median_low

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "claude-code-logs"


def requests_of(path: Path) -> dict[str, dict]:
    best: dict[str, dict] = {}
    with path.open(encoding="utf-8") as fh:
        for raw in fh:
            line = json.loads(raw)
            message = line.get("message") or {}
            usage = message.get("usage")
            if line.get("type") != "assistant" or line.get("isSidechain") or not isinstance(usage, dict):
                continue
            if message.get("model") == "<synthetic>":
                continue
            key = line.get("requestId") or message.get("id")
            if not usage.get("cache_read_input_tokens"):
                continue
            if key and (key not in best or (usage.get("output_tokens") or 0) >= best[key]["output"]):
                best[key] = {
                    "write": usage.get("cache_creation_input_tokens") or 0,
                    "output": usage.get("output_tokens") or 0,
                }
    return best


def main(directory: Path) -> None:
    writes, outputs, files = [], [], 0
    for path in sorted(directory.glob("*.jsonl")):
        files += 1
        for request in requests_of(path).values():
            writes.append(request["write"])
            outputs.append(request["output"])
    print(f"files: {files}, warm main-chain requests: {len(writes)}")
    print(f"median cache write per request: {median_low(writes)} tokens")
    print(f"median output per request: {median_low(outputs)} tokens")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DIR)
