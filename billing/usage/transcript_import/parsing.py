"""Read Claude Code JSONL transcripts into one `LogRequest` per billed API request.

Every assistant line carries `message.usage`, and one API request is spread over several
lines (one per content block), so requests are counted once: keyed by `requestId`, falling
back to `message.id` where a gateway left no request id.

Which usage counts: the one with the largest `output_tokens`. Claude Code writes each line
as the stream goes; the input side (input, cache write, cache read) is the same on every line
of a request, but `output_tokens` grows (the first lines often say 1-8, the final one the real
count). In the sample logs (data/claude-code-logs, 32.8k requests) output differs between the
lines of 6,731 requests, and the last line has the maximum in every one of them.

What else the sample data shows:
- A requestId can carry several `message.id`s. Where the input side is identical (910 cases,
  one repository) it is the same response re-labelled: one request. Where it differs (3 cases,
  a retry 20 s to 2 min later that reads what the first call wrote) it is a second billed call
  under a stale request id: it becomes its own request, `<requestId>:<message.id>`.
- Sub-agent transcripts merged into a session repeat some main-chain lines with
  `isSidechain: true` (same uuid, same request): a request with any main-chain line is main.
- A resumed session's file repeats the requests of the session it continues (same request
  ids, the new session id): 742 requests in the sample appear in two to six sessions. Each
  is counted once, in the earliest session, with the largest output any copy reports (a
  copy can be cut mid-stream: `req_011CYxJWV2YshaJhcypdBVvj` says 8 output tokens in one
  file and 110 in the next); the copies still feed the later session's tracker, since they
  are that conversation's history.

`<synthetic>` lines (Claude Code's own placeholders, never billed) are skipped, and so are
lines whose session, request or record id is longer than the usage table keeps (cut to fit,
two requests could become one: counted, as `long_id_lines`). Sidechain
requests (sub-agents) are kept apart from the main chain; each sub-agent conversation (the
lines linked by `parentUuid` back to one root) is its own `thread`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson

SYNTHETIC_MODEL = "<synthetic>"
# The longest ids UsageEvent keeps (session_key, record_id, request_id), so that what the report
# counts is what storing writes and a re-import finds again.
MAX_SESSION_ID = 100
MAX_RECORD_ID = 200
MAX_REQUEST_ID = 100


@dataclass(slots=True)
class LogRequest:
    """One API request of a transcript, after merging its lines."""

    session_id: str
    record_id: str
    request_id: str
    message_id: str
    model: str
    at: datetime  # the first line's timestamp: the closest the log gets to the request's start
    usage: dict  # the `message.usage` with the largest output_tokens
    is_sidechain: bool
    thread: str = ""  # sidechain: the root uuid of its sub-agent conversation
    lines: int = 1
    counted: bool = True  # False for a resumed session's copy of an earlier session's request


@dataclass(slots=True)
class ParseStats:
    files: int = 0
    lines: int = 0
    assistant_lines: int = 0
    synthetic_lines: int = 0
    skipped_lines: int = 0  # not JSON, or an assistant line without usage, model, id or time
    long_id_lines: int = 0  # an id longer than the usage table keeps (MAX_*_ID)
    # Requests whose token counts the cost engine cannot price (a string or negative count in a
    # hand-edited or truncated transcript): left out of the replay, not a failed import.
    unpriceable_requests: int = 0


def log_files(paths: Iterable[str | Path]) -> list[Path]:
    """The transcripts named: files as given, folders searched recursively for *.jsonl."""
    found: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.update(dict.fromkeys(sorted(p for p in path.rglob("*.jsonl") if p.is_file())))
        elif path.is_file():
            found[path] = None
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
    return list(found)


def _input_side(usage: dict) -> tuple:
    return (
        usage.get("input_tokens"),
        usage.get("cache_creation_input_tokens"),
        usage.get("cache_read_input_tokens"),
    )


def _output(usage: dict) -> int:
    value = usage.get("output_tokens")
    return value if type(value) is int else 0


def log_requests_parse(
    files: Iterable[Path], *, progress: Callable[[int], None] | None = None
) -> tuple[dict[str, list[LogRequest]], ParseStats]:
    """Requests per Claude Code session id, each session in time order.

    `progress` is called with the size in bytes of each file once it is read.
    """
    stats = ParseStats()
    sessions: dict[str, dict[str, LogRequest]] = {}
    loads = orjson.loads
    parse_time = datetime.fromisoformat
    roots: dict[str, str] = {}  # sidechain line uuid -> root uuid of its conversation
    for path in files:
        stats.files += 1
        with open(path, "rb") as handle:
            raw = handle.read()
        lines = raw.splitlines()
        stats.lines += len(lines)
        for line in lines:
            try:
                data = loads(line)
            except orjson.JSONDecodeError:
                stats.skipped_lines += bool(line.strip())
                continue
            if type(data) is not dict:
                continue
            thread = ""
            if data.get("isSidechain"):
                uuid, parent = data.get("uuid"), data.get("parentUuid")
                thread = roots.get(parent, parent) if parent else (uuid or "")
                if uuid:
                    roots[uuid] = thread
            if data.get("type") != "assistant":
                continue
            stats.assistant_lines += 1
            message = data.get("message") or {}
            model = message.get("model")
            if model == SYNTHETIC_MODEL:
                stats.synthetic_lines += 1
                continue
            usage = message.get("usage")
            request_id = data.get("requestId") or ""
            message_id = message.get("id") or ""
            key = request_id or message_id
            stamp = data.get("timestamp")
            if type(usage) is not dict or not model or not key or type(stamp) is not str:
                stats.skipped_lines += 1
                continue
            session_id = data.get("sessionId") or path.stem
            if len(session_id) > MAX_SESSION_ID or len(key) > MAX_RECORD_ID or len(request_id) > MAX_REQUEST_ID:
                stats.long_id_lines += 1
                continue
            requests = sessions.get(session_id)
            if requests is None:
                requests = sessions[session_id] = {}
            main = not data.get("isSidechain")
            current = requests.get(key)
            if current is not None and message_id and current.message_id and message_id != current.message_id:
                retry_key = f"{key}:{message_id}"
                if retry_key in requests:
                    current = requests[retry_key]
                elif _input_side(usage) != _input_side(current.usage):
                    if len(retry_key) > MAX_RECORD_ID:
                        stats.long_id_lines += 1
                        continue
                    key, current = retry_key, None  # a second billed call under a stale request id
            if current is None:
                try:
                    at = parse_time(stamp)
                except ValueError:
                    stats.skipped_lines += 1
                    continue
                requests[key] = LogRequest(
                    session_id=session_id,
                    record_id=key,
                    request_id=request_id,
                    message_id=message_id,
                    model=model,
                    at=at,
                    usage=usage,
                    is_sidechain=not main,
                    thread=thread,
                )
                continue
            if _output(usage) >= _output(current.usage):
                current.usage = usage
            current.lines += 1
            if main:
                current.is_sidechain = False
                current.thread = ""
        if progress is not None:
            progress(len(raw))
    ordered = {
        session_id: sorted(requests.values(), key=lambda r: r.at)  # stable: ties keep log order
        for session_id, requests in sessions.items()
        if requests
    }
    _copies_counted_once(ordered)
    return ordered, stats


def _copies_counted_once(sessions: dict[str, list[LogRequest]]) -> None:
    """A request is billed once: in the earliest session that has it, with the largest output
    any copy reports, whatever order the files came in. (A resumed session's copies keep
    their original times: on a tie the session that goes on longer is the later one.)"""
    counted: dict[str, LogRequest] = {}
    for requests in sorted(sessions.values(), key=lambda rs: (rs[0].at, rs[-1].at, rs[0].session_id)):
        for req in requests:
            first = counted.get(req.record_id)
            if first is None:
                counted[req.record_id] = req
                continue
            req.counted = False
            if _output(req.usage) > _output(first.usage):
                first.usage = req.usage
