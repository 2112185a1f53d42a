"""Median cache write and output per warm request of the real Claude Code transcripts.

    .venv/bin/python -m bench.turn_medians [DIR]   (default ../shared/data/claude-code-logs)

The quote's steady state (`billing.quotes.engine.LOGGED_TURN`) uses these figures for a session
that has no warm turn of its own yet. The transcripts are read by the import's own parser
(`billing.usage.transcript_import.log_requests_parse`), so each billed request counts once: its
lines merged, the largest output of its copies, a resumed session's copies of earlier requests
left to the session that made them, `<synthetic>` lines left out. Then counted as the quote
counts a session's own turns (`billing.quotes.switch_context`): main-chain requests only
(sub-agents run conversations of their own) that read the cache (a warm turn; a cold one writes
the whole prompt); the lower median.
"""

import os
import sys
from pathlib import Path
from statistics import median_low

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "claude-code-logs"


def main(directory: Path) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mk0r.settings.base")
    import django

    django.setup()  # the import's package also holds its replay, which reads the catalog's models
    from billing.usage.transcript_import import log_files, log_requests_parse

    sessions, stats = log_requests_parse(log_files([directory]))
    writes, outputs = [], []
    for requests in sessions.values():
        for request in requests:
            usage = request.usage
            if request.counted and not request.is_sidechain and usage.get("cache_read_input_tokens"):
                writes.append(usage.get("cache_creation_input_tokens") or 0)
                outputs.append(usage.get("output_tokens") or 0)
    print(f"files: {stats.files}, sessions: {len(sessions)}, warm main-chain requests: {len(writes)}")
    print(f"median cache write per request: {median_low(writes)} tokens")
    print(f"median output per request: {median_low(outputs)} tokens")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DIR)
