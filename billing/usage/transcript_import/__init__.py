"""Import Claude Code JSONL transcripts: cost, cache hits, switches and the tracker's error.

Claude Code writes one transcript per session (`~/.claude/projects/<project>/<sessionId>.jsonl`).
`parsing` turns the lines into one request per billed API call, `replay` prices each request
at its own time and runs the cache-state tracker over each conversation, `report` sums what
the replay found, and `storing` writes the requests as a user's usage events.
"""

from billing.usage.transcript_import.parsing import (
    SYNTHETIC_MODEL,
    LogRequest,
    ParseStats,
    log_files,
    log_requests_parse,
)
from billing.usage.transcript_import.replay import PriceBook, logs_import, session_replay
from billing.usage.transcript_import.report import (
    ImportReport,
    ReplayedRequest,
    ReplayedSwitch,
    SessionReplay,
    Totals,
)
from billing.usage.transcript_import.storing import IMPORT_SOURCE, usage_events_store

__all__ = [
    "IMPORT_SOURCE",
    "SYNTHETIC_MODEL",
    "ImportReport",
    "LogRequest",
    "ParseStats",
    "PriceBook",
    "ReplayedRequest",
    "ReplayedSwitch",
    "SessionReplay",
    "Totals",
    "log_files",
    "log_requests_parse",
    "logs_import",
    "session_replay",
    "usage_events_store",
]
