"""Import Claude Code JSONL transcripts: cost, cache hits, switches and the tracker's error.

Claude Code writes one transcript per session (`~/.claude/projects/<project>/<sessionId>.jsonl`).
Every assistant line carries `message.usage`, and one API request is spread over several
lines (one per content block), so requests are counted once: keyed by `requestId`, falling
back to `message.id` where a gateway left no request id.

Which line's usage counts: the LAST one. Claude Code writes each line as the stream goes;
the input side (input, cache write, cache read) is the same on every line of a request, but
`output_tokens` grows (the first lines often say 1-8, the final one the real count). In the
sample logs (data/claude-code-logs, 32.8k requests) output differs between the lines of
6,731 requests, and the last line has the maximum in every one of them; taking the first line
would undercount output.

Two more things the sample data shows:
- A requestId can carry several `message.id`s. Where the input side is identical (910 cases,
  one repository) it is the same response re-labelled: one request. Where it differs (3 cases,
  a retry 20 s to 2 min later that reads what the first call wrote) it is a second billed call
  under a stale request id: it becomes its own request, `<requestId>:<message.id>`.
- Sub-agent transcripts merged into a session repeat some main-chain lines with
  `isSidechain: true` (same uuid, same request): a request with any main-chain line is main.

- A resumed session's file repeats the requests of the session it continues (same request
  ids, the new session id): 742 requests in the sample appear in two to six sessions. Each
  is counted once, in the earliest session; the copies still feed the later session's
  tracker, since they are that conversation's history.

`<synthetic>` lines (Claude Code's own placeholders, never billed) are skipped. Sidechain
requests (sub-agents) are kept apart from the main chain, and each sub-agent conversation
(the lines linked by `parentUuid` back to one root) gets a tracker of its own: sub-agents
run in parallel, each with its own prompt, so their prefix lengths are not comparable.

The replay keeps everything in memory (one `CacheTracker` per stream) and touches the ORM
once per model for the catalog; storing `UsageEvent`s is a separate, idempotent step.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from mk0r.timefmt import iso_z

from .cache_state import TTL_DELTAS, CacheTracker
from .costs import CostBreakdown, Usage, usage_cost
from .models import PriceVersion, UsageEvent
from .money import ZERO, usd_quantize, usd_str
from .prices import Prices, prices_from_version
from .pricing import UnknownModel, model_resolve
from .usage import miss_cause, switch_tax_actual

SYNTHETIC_MODEL = "<synthetic>"
IMPORT_SOURCE = "import"
# A prediction counts as right when it is within 1% of what Anthropic reported.
PREDICTION_TOLERANCE = Decimal("0.01")


@dataclass(slots=True)
class LogRequest:
    """One API request of a transcript, after merging its lines."""

    session_id: str
    record_id: str
    request_id: str
    message_id: str
    model: str
    at: datetime  # the first line's timestamp: the closest the log gets to the request's start
    usage: dict  # the last line's `message.usage`
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


def log_requests_parse(
    files: Iterable[Path], *, progress: Callable[[int], None] | None = None
) -> tuple[dict[str, list[LogRequest]], ParseStats]:
    """Requests per Claude Code session id, each session in time order.

    `progress` is called with the size in bytes of each file once it is read.
    """
    stats = ParseStats()
    sessions: dict[str, dict[str, LogRequest]] = {}
    loads = json.loads
    parse_time = datetime.fromisoformat
    roots: dict[str, str] = {}  # sidechain line uuid -> root uuid of its conversation
    for path in files:
        stats.files += 1
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        for line in text.splitlines():
            stats.lines += 1
            # Only assistant lines carry usage, and only sidechain lines link sub-agent
            # conversations: the cheap test skips main-chain user lines unparsed.
            if '"assistant"' not in line and '"isSidechain":true' not in line and '"isSidechain": true' not in line:
                continue
            try:
                data = loads(line)
            except ValueError:
                stats.skipped_lines += 1
                continue
            if not isinstance(data, dict):
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
            if not isinstance(usage, dict) or not model or not key or not isinstance(stamp, str):
                stats.skipped_lines += 1
                continue
            session_id = data.get("sessionId") or path.stem
            requests = sessions.setdefault(session_id, {})
            main = not data.get("isSidechain")
            current = requests.get(key)
            if current is not None and message_id and current.message_id and message_id != current.message_id:
                retry_key = f"{key}:{message_id}"
                if retry_key in requests:
                    current = requests[retry_key]
                elif _input_side(usage) != _input_side(current.usage):
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
            current.usage = usage  # the last line of a request has its final usage
            current.lines += 1
            if main:
                current.is_sidechain = False
                current.thread = ""
        if progress is not None:
            progress(len(text.encode()) if not text.isascii() else len(text))
    ordered = {
        session_id: sorted(requests.values(), key=lambda r: r.at)  # stable: ties keep log order
        for session_id, requests in sessions.items()
    }
    # A request is billed once: it belongs to the earliest session that has it.
    seen: set[str] = set()
    for requests in sorted(ordered.values(), key=lambda rs: rs[0].at):
        for req in requests:
            if req.record_id in seen:
                req.counted = False
            else:
                seen.add(req.record_id)
    return ordered, stats


class PriceBook:
    """Catalog lookups for a replay: one query per model, then prices by timestamp in memory.

    The version picked is the one `pricing.price_version_for` picks (latest effective_from
    at or before the request, else the model's first version).
    """

    def __init__(self) -> None:
        self._models: dict[str, tuple[str, list[datetime], list[PriceVersion]] | None] = {}
        self._prices: dict[int, Prices] = {}

    def lookup(self, model: str, at: datetime) -> tuple[str, PriceVersion, Prices] | None:
        """(canonical API id, price version, prices) of `model` at `at`; None if unknown."""
        entry = self._models.get(model, False)
        if entry is False:
            entry = self._load(model, at)
            self._models[model] = entry
        if entry is None:
            return None
        api_id, starts, versions = entry
        version = versions[max(bisect_right(starts, at) - 1, 0)]
        prices = self._prices.get(version.pk)
        if prices is None:
            prices = self._prices[version.pk] = prices_from_version(version)
        return api_id, version, prices

    def _load(self, model: str, at: datetime):
        try:
            resolved = model_resolve(model_id=model, at=at)
        except UnknownModel:
            return None
        versions = list(
            PriceVersion.objects.select_related("api_model")
            .filter(api_model=resolved.priced_model)
            .order_by("effective_from")
        )
        if not versions:
            return None
        return resolved.api_id, [v.effective_from for v in versions], versions


@dataclass(slots=True)
class ReplayedRequest:
    request: LogRequest
    model: str  # canonical API id
    usage: Usage
    cost: CostBreakdown
    version: PriceVersion
    predicted_read: int
    miss_cause: str
    eligible: bool  # counts for hit rate and prediction error (DESIGN §7)


@dataclass(slots=True)
class ReplayedSwitch:
    session_id: str
    record_id: str
    at: datetime
    from_model: str
    to_model: str
    prefix_tokens: int  # the first request's prompt after the switch
    actual_input_usd: Decimal
    stay_usd: Decimal
    tax_usd: Decimal

    def to_json(self) -> dict:
        return {
            "sessionId": self.session_id,
            "recordId": self.record_id,
            "at": iso_z(self.at),
            "from": self.from_model,
            "to": self.to_model,
            "prefixTokens": self.prefix_tokens,
            "actualInputUsd": str(self.actual_input_usd),
            "stayUsd": str(self.stay_usd),
            "taxUsd": str(self.tax_usd),
        }


@dataclass(slots=True)
class Totals:
    """Sums over a set of replayed requests (a session or the whole import)."""

    requests: int = 0
    sidechain_requests: int = 0
    input: Decimal = ZERO
    write_5m: Decimal = ZERO
    write_1h: Decimal = ZERO
    read: Decimal = ZERO
    output: Decimal = ZERO
    tokens: Counter = field(default_factory=Counter)
    # Hit rate over eligible requests: read / (read + write + input).
    eligible: int = 0
    eligible_read: int = 0
    eligible_prompt: int = 0
    exact: int = 0
    within_tolerance: int = 0
    abs_error_tokens: int = 0
    predicted_read_tokens: int = 0
    actual_read_tokens: int = 0
    miss_causes: Counter = field(default_factory=Counter)

    def add(self, r: ReplayedRequest) -> None:
        u, c = r.usage, r.cost
        self.requests += 1
        self.sidechain_requests += r.request.is_sidechain
        self.input += c.input
        self.write_5m += c.cache_write_5m
        self.write_1h += c.cache_write_1h
        self.read += c.cache_read
        self.output += c.output
        self.tokens["input"] += u.input_tokens
        self.tokens["write5m"] += u.cache_write_5m_tokens
        self.tokens["write1h"] += u.cache_write_1h_tokens
        self.tokens["read"] += u.cache_read_tokens
        self.tokens["output"] += u.output_tokens
        if r.miss_cause:
            self.miss_causes[r.miss_cause] += 1
        if not r.eligible:
            return
        actual, predicted = u.cache_read_tokens, r.predicted_read
        self.eligible += 1
        self.eligible_read += actual
        self.eligible_prompt += u.total_input_tokens
        self.exact += predicted == actual
        self.within_tolerance += abs(predicted - actual) <= actual * PREDICTION_TOLERANCE
        self.abs_error_tokens += abs(predicted - actual)
        self.predicted_read_tokens += predicted
        self.actual_read_tokens += actual

    def merge(self, other: Totals) -> None:
        for name in self.__slots__:
            value = getattr(other, name)
            if isinstance(value, Counter):
                getattr(self, name).update(value)
            else:
                setattr(self, name, getattr(self, name) + value)

    @property
    def total(self) -> Decimal:
        return self.input + self.write_5m + self.write_1h + self.read + self.output

    @property
    def hit_rate(self) -> float | None:
        return round(self.eligible_read / self.eligible_prompt, 4) if self.eligible_prompt else None

    @property
    def within_share(self) -> float | None:
        return round(self.within_tolerance / self.eligible, 4) if self.eligible else None

    def cost_json(self) -> dict:
        return {
            "inputUsd": usd_str(self.input),
            "cacheWrite5mUsd": usd_str(self.write_5m),
            "cacheWrite1hUsd": usd_str(self.write_1h),
            "cacheReadUsd": usd_str(self.read),
            "outputUsd": usd_str(self.output),
        }

    def prediction_json(self) -> dict:
        return {
            "eligible": self.eligible,
            "exact": self.exact,
            "withinOnePercent": self.within_tolerance,
            "withinOnePercentShare": self.within_share,
            "meanAbsErrorTokens": round(self.abs_error_tokens / self.eligible, 1) if self.eligible else None,
            "predictedReadTokens": self.predicted_read_tokens,
            "actualReadTokens": self.actual_read_tokens,
        }


@dataclass(slots=True)
class SessionReplay:
    session_id: str
    requests: list[ReplayedRequest] = field(default_factory=list)
    switches: list[ReplayedSwitch] = field(default_factory=list)
    totals: Totals = field(default_factory=Totals)

    @property
    def main_models(self) -> list[str]:
        return [r.model for r in self.requests if not r.request.is_sidechain]

    def to_json(self) -> dict:
        t = self.totals
        first = self.requests[0].request.at if self.requests else None
        last = self.requests[-1].request.at if self.requests else None
        return {
            "sessionId": self.session_id,
            "requests": t.requests,
            "sidechainRequests": t.sidechain_requests,
            "firstAt": iso_z(first),
            "lastAt": iso_z(last),
            "models": sorted({r.model for r in self.requests}),
            "totalUsd": usd_str(t.total),
            "cost": t.cost_json(),
            "tokens": dict(t.tokens),
            "hitRate": t.hit_rate,
            "missCauses": dict(t.miss_causes),
            "switches": [s.to_json() for s in self.switches],
            "predictionError": t.prediction_json(),
        }


@dataclass(slots=True)
class ImportReport:
    sessions: list[SessionReplay]
    stats: ParseStats
    unknown_models: Counter
    totals: Totals

    @property
    def switches(self) -> list[ReplayedSwitch]:
        return [s for session in self.sessions for s in session.switches]

    def to_json(self) -> dict:
        t = self.totals
        switches = self.switches
        return {
            "files": self.stats.files,
            "lines": self.stats.lines,
            "totalUsd": usd_str(t.total),
            "cost": t.cost_json(),
            "tokens": dict(t.tokens),
            "requests": {
                "total": t.requests,
                "main": t.requests - t.sidechain_requests,
                "sidechain": t.sidechain_requests,
                "eligible": t.eligible,
                "syntheticLinesSkipped": self.stats.synthetic_lines,
                "otherLinesSkipped": self.stats.skipped_lines,
                "unknownModels": dict(self.unknown_models),
            },
            "hitRate": t.hit_rate,
            "missCauses": dict(t.miss_causes),
            "switches": {
                "count": len(switches),
                "sessions": len({s.session_id for s in switches}),
                "taxUsd": usd_str(sum((s.tax_usd for s in switches), ZERO)),
                "items": [s.to_json() for s in switches],
            },
            "predictionError": t.prediction_json(),
            "sessions": [s.to_json() for s in self.sessions],
        }


def session_replay(
    session_id: str, requests: list[LogRequest], *, book: PriceBook, unknown: Counter | None = None
) -> SessionReplay:
    """Replay one session's requests (in time order) through the cost engine and the tracker.

    Streams: the main chain, and one per sub-agent conversation; each has its own tracker, so
    each one's first request is a first turn. Copies of requests billed in an earlier session
    (`counted=False`) only feed the tracker.
    """
    replay = SessionReplay(session_id=session_id)
    trackers: dict[str, CacheTracker] = {}
    last_main: str | None = None
    for req in requests:
        found = book.lookup(req.model, req.at)
        if found is None:
            if unknown is not None and req.counted:
                unknown[req.model] += 1
            continue
        model, version, prices = found
        stream = req.thread if req.is_sidechain else ""
        tracker = trackers.get(stream)
        if tracker is None:
            tracker = trackers[stream] = CacheTracker()
        usage = Usage.from_anthropic(req.usage, write_ttl=tracker.ttl_policy)
        if not req.counted:
            tracker.record(model=model, usage=usage, at=req.at)
            if not req.is_sidechain:
                last_main = model
            continue
        before = tracker.snapshot()
        cause, predicted = miss_cause(
            before=before,
            model=model,
            usage=usage,
            at=req.at,
            prices=prices,
            diagnostics=None,
            predicted=tracker.predict(model=model, prefix_tokens=usage.total_input_tokens, at=req.at),
        )
        eligible = (
            before.last_request_at is not None
            and prices.is_cacheable(usage.total_input_tokens)
            and req.at - before.last_request_at <= TTL_DELTAS[before.ttl_policy]
        )
        replayed = ReplayedRequest(
            request=req,
            model=model,
            usage=usage,
            cost=usage_cost(usage=usage, prices=prices),
            version=version,
            predicted_read=predicted,
            miss_cause=cause,
            eligible=eligible,
        )
        if not req.is_sidechain:
            if last_main is not None and last_main != model:
                replay.switches.append(_switch(session_id, req, before, last_main, model, prices, usage, book))
            last_main = model
        tracker.record(model=model, usage=usage, at=req.at)
        replay.requests.append(replayed)
        replay.totals.add(replayed)
    return replay


def _switch(session_id, req, before, from_model, to_model, prices_to, usage, book) -> ReplayedSwitch:
    """The real tax of a main-chain switch: its first request against staying (the shared
    `switch_tax_actual`, with the previous model priced at the same moment)."""
    prices_from = book.lookup(from_model, req.at)[2]
    tax = switch_tax_actual(
        before=before,
        from_model=from_model,
        to_model=to_model,
        prices_from=prices_from,
        prices_to=prices_to,
        usage=usage,
        at=req.at,
    )
    return ReplayedSwitch(
        session_id=session_id,
        record_id=req.record_id,
        at=req.at,
        from_model=from_model,
        to_model=to_model,
        prefix_tokens=usage.total_input_tokens,
        actual_input_usd=tax.actual_input_usd,
        stay_usd=tax.stay_usd,
        tax_usd=tax.tax_usd,
    )


def logs_import(paths: Iterable[str | Path], *, progress: Callable[[int], None] | None = None) -> ImportReport:
    """Parse and replay every transcript under `paths`; writes nothing."""
    sessions, stats = log_requests_parse(log_files(paths), progress=progress)
    book = PriceBook()
    unknown: Counter = Counter()
    replays = []
    totals = Totals()
    for session_id, requests in sessions.items():
        replay = session_replay(session_id, requests, book=book, unknown=unknown)
        if not replay.requests:
            continue
        replays.append(replay)
        totals.merge(replay.totals)
    replays.sort(key=lambda s: s.requests[0].request.at)
    return ImportReport(sessions=replays, stats=stats, unknown_models=unknown, totals=totals)


def usage_events_store(*, report: ImportReport, user, batch_size: int = 2000) -> tuple[int, int]:
    """Store every replayed request as a `UsageEvent` of `user`; idempotent per
    (session, record id), so a re-import creates nothing. Returns (created, already there)."""
    keys = [s.session_id for s in report.sessions]
    known: set[tuple[str, str]] = set()
    for start in range(0, len(keys), 500):
        known.update(
            UsageEvent.objects.filter(session_key__in=keys[start : start + 500]).values_list("session_key", "record_id")
        )
    rows = []
    existing = 0
    for session in report.sessions:
        for r in session.requests:
            req = r.request
            if (session.session_id, req.record_id) in known:
                existing += 1
                continue
            u = r.usage
            rows.append(
                UsageEvent(
                    session_key=session.session_id,
                    user=user,
                    record_id=req.record_id[:200],
                    source=IMPORT_SOURCE,
                    request_id=req.request_id[:100],
                    model=r.model,
                    occurred_at=req.at,
                    input_tokens=u.input_tokens,
                    cache_write_5m_tokens=u.cache_write_5m_tokens,
                    cache_write_1h_tokens=u.cache_write_1h_tokens,
                    cache_read_tokens=u.cache_read_tokens,
                    output_tokens=u.output_tokens,
                    cost_usd=usd_quantize(r.cost.total),
                    price_version=r.version,
                    predicted_read_tokens=r.predicted_read,
                    miss_cause=r.miss_cause,
                    is_sidechain=req.is_sidechain,
                )
            )
    # ignore_conflicts: a concurrent import of the same logs must not fail the batch.
    UsageEvent.objects.bulk_create(rows, batch_size=batch_size, ignore_conflicts=True)
    return len(rows), existing
