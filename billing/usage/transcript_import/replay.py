"""Replay parsed transcripts through the cost engine and the cache-state tracker.

Sidechain requests (sub-agents) are kept apart from the main chain, and each sub-agent
conversation gets a tracker of its own: sub-agents run in parallel, each with its own
prompt, so their prefix lengths are not comparable.

The replay keeps everything in memory (one `CacheTracker` per stream) and touches the ORM
once per model for the catalog; storing `UsageEvent`s is a separate, idempotent step.
"""

from __future__ import annotations

import gc
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from billing.catalog.cost_engine import Usage, usage_cost
from billing.catalog.price_snapshots import Prices, prices_from_version
from billing.catalog.selectors import UnknownModel, model_resolve
from billing.models import PriceVersion
from billing.quotes.cache_tracker import CacheTracker, request_platform
from billing.usage.cache_health import cache_request_eligible
from billing.usage.ingestion import miss_cause, switch_tax_actual
from billing.usage.transcript_import.parsing import LogRequest, ParseStats, log_files, log_requests_parse
from billing.usage.transcript_import.report import ImportReport, ReplayedRequest, ReplayedSwitch, SessionReplay, Totals


class PriceBook:
    """Catalog lookups for a replay: one query per model, then prices by timestamp in memory.

    The version picked is the one `billing.catalog.selectors.price_version_for` picks (latest
    effective_from at or before the request, else the model's first version).
    """

    def __init__(self) -> None:
        self._models: dict[str, tuple[str, list[datetime], list[PriceVersion]] | None] = {}
        self._prices: dict[int, Prices] = {}
        # Per model, the last answer and the time window it holds for: requests come in time
        # order within a session, so nearly every lookup is answered here.
        self._last: dict[str, tuple[datetime | None, datetime | None, tuple[str, PriceVersion, Prices]]] = {}

    def lookup(self, model: str, at: datetime) -> tuple[str, PriceVersion, Prices] | None:
        """(canonical API id, price version, prices) of `model` at `at`; None if unknown."""
        last = self._last.get(model)
        if last is not None and (last[0] is None or last[0] <= at) and (last[1] is None or at < last[1]):
            return last[2]
        entry = self._models.get(model, False)
        if entry is False:
            entry = self._load(model, at)
            self._models[model] = entry
        if entry is None:
            return None
        api_id, starts, versions = entry
        index = max(bisect_right(starts, at) - 1, 0)
        version = versions[index]
        prices = self._prices.get(version.pk)
        if prices is None:
            prices = self._prices[version.pk] = prices_from_version(version)
        found = (api_id, version, prices)
        # The first version also prices anything before it (as `price_version_for` does).
        self._last[model] = (
            starts[index] if index else None,
            starts[index + 1] if index + 1 < len(starts) else None,
            found,
        )
        return found

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


def session_replay(
    session_id: str,
    requests: list[LogRequest],
    *,
    book: PriceBook,
    unknown: Counter | None = None,
    stats: ParseStats | None = None,
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
        try:
            usage = Usage.from_anthropic(req.usage, write_ttl=tracker.ttl_policy)
        except ValueError:
            if stats is not None and req.counted:
                stats.unpriceable_requests += 1
            continue
        platform = request_platform(req.request_id)
        if not req.counted:
            tracker.record(model=model, usage=usage, at=req.at, platform=platform)
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
            platform=platform,
        )
        eligible = cache_request_eligible(
            previous_at=before.last_request_at,
            at=req.at,
            ttl=before.ttl_policy,
            cacheable=prices.is_cacheable(usage.total_input_tokens),
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
        tracker.record(model=model, usage=usage, at=req.at, platform=platform)
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
        platform=request_platform(req.request_id),
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


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """An import builds a few hundred thousand small objects that live until it ends and form
    no reference cycles; the cyclic collector would walk them (and everything Django holds)
    over and over for nothing: a third of the import's time. Reference counting still frees
    what is dropped."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def logs_import(paths: Iterable[str | Path], *, progress: Callable[[int], None] | None = None) -> ImportReport:
    """Parse and replay every transcript under `paths`; writes nothing."""
    with cyclic_gc_paused():
        return _logs_import(paths, progress=progress)


def _logs_import(paths: Iterable[str | Path], *, progress: Callable[[int], None] | None) -> ImportReport:
    sessions, stats = log_requests_parse(log_files(paths), progress=progress)
    book = PriceBook()
    unknown: Counter = Counter()
    replays = []
    totals = Totals()
    for session_id, requests in sessions.items():
        replay = session_replay(session_id, requests, book=book, unknown=unknown, stats=stats)
        if not replay.requests:
            continue
        replays.append(replay)
        totals.merge(replay.totals)
    replays.sort(key=lambda s: s.requests[0].request.at)
    return ImportReport(sessions=replays, stats=stats, unknown_models=unknown, totals=totals)
