"""Usage ingestion: the relay's records become usage events, feed the cache tracker,
get a miss cause, and reconcile the switch they follow.

A batch is validated whole (billing/usage/validation.py) before anything is written, and written
in one transaction: a bad record rejects the batch and nothing is half-applied. Records
already stored (same session, same id) are skipped, so a retried batch is a no-op. A turn's
`acp_turn` record stands in for its transcript records until they arrive, and is replaced by
them, whichever comes first.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal

from django.db import transaction

from billing.catalog.cost_engine import Usage, usage_cost
from billing.catalog.price_snapshots import Prices, prices_from_version
from billing.catalog.selectors import price_version_for
from billing.models import MissCause, RateLimitEvent, SwitchOutcome, SwitchReconciliation, SwitchRecord, UsageEvent
from billing.money import usd_quantize
from billing.quotes.cache_store import cache_state_rebuild, cache_state_record_requests
from billing.quotes.cache_tracker import TTL_DELTAS, CacheSnapshot, request_platform
from billing.quotes.engine import quote_compute
from billing.usage.validation import (
    ACP_TURN,
    RateLimitRecord,
    RequestRecord,
    diagnosed_miss_reason,
    usage_batch_parse,
    usage_payload_load,
)

__all__ = [
    "DIAGNOSED_MISS_CAUSES",
    "IngestResult",
    "RateLimitRecord",
    "RequestRecord",
    "SwitchTax",
    "miss_cause",
    "switch_reconcile",
    "switch_tax_actual",
    "usage_batch_parse",
    "usage_ingest",
    "usage_payload_load",
]

# Switches whose first request never came (the session closed) stay unmatched; look at the latest few.
MAX_WAITING_SWITCHES = 10
# Anthropic's cache diagnostics, mapped onto our causes. `previous_message_not_found` says only
# that the API has no record of the previous request, not that this one changed: see miss_cause.
DIAGNOSED_MISS_CAUSES = {
    "model_changed": MissCause.MODEL_SWITCH,
    "system_changed": MissCause.PREFIX_CHANGED,
    "tools_changed": MissCause.PREFIX_CHANGED,
    "messages_changed": MissCause.PREFIX_CHANGED,
}
PREVIOUS_MESSAGE_NOT_FOUND = "previous_message_not_found"


@dataclasses.dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int


def miss_cause(
    *,
    before: CacheSnapshot,
    model: str,
    usage: Usage,
    at: datetime,
    prices: Prices,
    diagnostics: dict | None,
    platform: str | None = None,
) -> tuple[str, int]:
    """Why a request missed the cache ("" when it did not), and the read the tracker expected.
    `platform`: where the request ran (None: where the session's last one did)."""
    predicted = before.warm_prefix(model=model, prefix_tokens=usage.total_input_tokens, at=at, platform=platform)
    if before.last_request_at is None:
        return MissCause.FIRST_TURN, predicted
    if (
        not usage.cache_write_tokens
        and not usage.cache_read_tokens
        and not prices.is_cacheable(usage.total_input_tokens)
    ):
        return MissCause.BELOW_MINIMUM, predicted
    # A hit reads at least what was warm; the conversation before the new message is then cached.
    if usage.cache_read_tokens and usage.cache_read_tokens >= predicted:
        return "", predicted
    reason = diagnosed_miss_reason(diagnostics)
    if reason == PREVIOUS_MESSAGE_NOT_FOUND and predicted:
        # The cache should still hold the prefix (same model, inside its TTL), yet the API knows
        # nothing of the previous request: this one went to another workspace, key or region.
        return MissCause.ROTATION, predicted
    if reason in DIAGNOSED_MISS_CAUSES:
        return DIAGNOSED_MISS_CAUSES[reason], predicted
    if before.current_model and before.current_model != model and predicted == 0:
        return MissCause.MODEL_SWITCH, predicted
    if platform and platform != before.platform and predicted == 0:
        return MissCause.ROTATION, predicted
    if predicted == 0 and before.has_cached(model) and at - before.last_request_at >= TTL_DELTAS[before.ttl_policy]:
        return MissCause.TTL_EXPIRED, predicted
    if predicted > usage.cache_read_tokens:
        return MissCause.PREFIX_CHANGED, predicted
    return MissCause.UNKNOWN, predicted


@transaction.atomic
def usage_ingest(
    *,
    session_key: str,
    session_pk: int | None,
    user,
    records: list[RequestRecord | RateLimitRecord],
    ttl: str | None = None,
) -> IngestResult:
    """Store a validated batch for one session; the caller holds the session's row lock.

    A handful of queries per batch, whatever its size: known ids, one tracker replay per
    stream (main chain, sub-agents), one insert per table, and switch matching only when the
    session has a switch waiting for its first request. `ttl`: the session's TTL so far, which
    a new cache state starts from until a write shows the one its agent really uses.
    """
    ids = [r.record_id for r in records]
    known = set(
        UsageEvent.objects.filter(session_key=session_key, record_id__in=ids).values_list("record_id", flat=True)
    ) | set(
        RateLimitEvent.objects.filter(session_key=session_key, record_id__in=ids).values_list("record_id", flat=True)
    )
    fresh: list[RequestRecord | RateLimitRecord] = []
    for record in sorted(records, key=lambda r: r.at):
        if record.record_id not in known:
            known.add(record.record_id)
            fresh.append(record)
    RateLimitEvent.objects.bulk_create(
        RateLimitEvent(
            session_key=session_key,
            user=user,
            record_id=r.record_id,
            rate_limit_type=r.rate_limit_type,
            resets_at=r.resets_at,
            utilization=r.utilization,
            occurred_at=r.at,
        )
        for r in fresh
        if isinstance(r, RateLimitRecord)
    )
    requests = _turns_billed_once(session_key=session_key, requests=[r for r in fresh if isinstance(r, RequestRecord)])
    befores = _replay(session_key=session_key, requests=requests, ttl=ttl)
    events = UsageEvent.objects.bulk_create(
        _usage_event(session_key=session_key, user=user, record=r, before=befores[r.record_id]) for r in requests
    )
    if session_pk is not None and events:
        _reconcile_switches(session_pk=session_pk, requests=requests, events=events, befores=befores)
    accepted = len(requests) + sum(isinstance(r, RateLimitRecord) for r in fresh)
    return IngestResult(accepted=accepted, duplicates=len(records) - accepted)


def _turns_billed_once(*, session_key: str, requests: list[RequestRecord]) -> list[RequestRecord]:
    """A turn is billed from its transcript records when any exist, else from its `acp_turn`
    record (the agent's total for the turn), whichever arrives first.

    Returns the requests to store: without the `acp_turn` records of turns whose transcript
    records are stored or in this batch (an `acp_turn` arriving late counts as a duplicate).
    Stored `acp_turn` events of turns whose transcript records are in this batch are deleted,
    with the switch reconciliation made from one (the switch then waits for its first
    transcript request again), and the main chain's cache state is rebuilt without them.
    Costs one query when the records name their turns, none otherwise.
    """
    turn_keys = {r.turn_key for r in requests if r.turn_key}
    if not turn_keys:
        return requests
    stored = list(
        UsageEvent.objects.filter(session_key=session_key, turn_key__in=turn_keys).values_list(
            "pk", "turn_key", "source"
        )
    )
    transcribed = {key for _, key, source in stored if source != ACP_TURN}
    transcribed |= {r.turn_key for r in requests if r.turn_key and r.source != ACP_TURN}
    replaced = [pk for pk, key, source in stored if source == ACP_TURN and key in transcribed]
    if replaced:
        UsageEvent.objects.filter(pk__in=replaced).delete()  # cascades to its SwitchReconciliation
        main_chain = (
            UsageEvent.objects.filter(session_key=session_key, is_sidechain=False)
            .order_by("occurred_at", "pk")
            .values_list(
                "model",
                "input_tokens",
                "cache_write_5m_tokens",
                "cache_write_1h_tokens",
                "cache_read_tokens",
                "output_tokens",
                "occurred_at",
                "request_id",
            )
        )
        cache_state_rebuild(
            session_key=session_key,
            requests=[
                (
                    model,
                    Usage(
                        input_tokens=i,
                        cache_write_5m_tokens=w5,
                        cache_write_1h_tokens=w1,
                        cache_read_tokens=rd,
                        output_tokens=out,
                    ),
                    at,
                    request_platform(request_id),
                )
                for model, i, w5, w1, rd, out, at, request_id in main_chain
            ],
        )
    return [r for r in requests if not (r.source == ACP_TURN and r.turn_key in transcribed)]


def _replay(*, session_key: str, requests: list[RequestRecord], ttl: str | None) -> dict[str, CacheSnapshot]:
    """Feed each stream's requests to its tracker; the state before each request, by record id."""
    streams: dict[str, list[RequestRecord]] = {}
    for record in requests:
        # Sub-agents run their own conversation (often on another model): a cache of their own.
        streams.setdefault(f"{session_key}/sidechain" if record.is_sidechain else session_key, []).append(record)
    befores: dict[str, CacheSnapshot] = {}
    for tracker_key, stream in streams.items():
        snapshots = cache_state_record_requests(
            session_key=tracker_key,
            requests=[(r.model, r.usage, r.at, request_platform(r.request_id)) for r in stream],
            ttl_policy=ttl,
        )
        befores.update(zip((r.record_id for r in stream), snapshots, strict=True))
    return befores


def _usage_event(*, session_key: str, user, record: RequestRecord, before: CacheSnapshot) -> UsageEvent:
    usage = record.usage
    cause, predicted = miss_cause(
        before=before,
        model=record.model,
        usage=usage,
        at=record.at,
        prices=record.prices,
        diagnostics=record.diagnostics,
        platform=request_platform(record.request_id),
    )
    return UsageEvent(
        session_key=session_key,
        user=user,
        record_id=record.record_id,
        source=record.source,
        request_id=record.request_id,
        model=record.model,
        occurred_at=record.at,
        input_tokens=usage.input_tokens,
        cache_write_5m_tokens=usage.cache_write_5m_tokens,
        cache_write_1h_tokens=usage.cache_write_1h_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        output_tokens=usage.output_tokens,
        cost_usd=record.cost_usd,
        price_version=record.version,
        predicted_read_tokens=predicted,
        miss_cause=cause,
        is_sidechain=record.is_sidechain,
        diagnostics=record.diagnostics,
        turn_key=record.turn_key,
    )


def _reconcile_switches(
    *, session_pk: int, requests: list[RequestRecord], events: list[UsageEvent], befores: dict[str, CacheSnapshot]
) -> None:
    """Match each applied switch still waiting for its first request to that request."""
    waiting = sorted(
        SwitchRecord.objects.filter(session_id=session_pk, outcome=SwitchOutcome.APPLIED, reconciliation__isnull=True)
        .select_related("price_version_from__api_model")
        .order_by("-created_at")[:MAX_WAITING_SWITCHES],
        key=lambda switch: switch.created_at,
    )
    if not waiting:
        return
    main_chain = [(r, e) for r, e in zip(requests, events, strict=True) if not r.is_sidechain]
    for switch in waiting:
        first = next(((r, e) for r, e in main_chain if r.at >= switch.created_at), None)
        if first is None:
            continue
        record, event = first
        later_switch = any(w.created_at > switch.created_at and w.created_at <= record.at for w in waiting)
        earlier_request = UsageEvent.objects.filter(
            session_key=event.session_key,
            is_sidechain=False,
            occurred_at__gte=switch.created_at,
            occurred_at__lt=record.at,
        ).exists()
        if later_switch or earlier_request:
            continue  # its first request came before this batch, or another switch followed at once
        switch_reconcile(switch=switch, event=event, record=record, before=befores[record.record_id])


def switch_reconcile(
    *, switch: SwitchRecord, event: UsageEvent, record: RequestRecord, before: CacheSnapshot
) -> SwitchReconciliation:
    """Store what a switch really cost, from its first request (`before`: the state just before it)."""
    prices_from = prices_from_version(
        price_version_for(api_model=switch.price_version_from.api_model, at=event.occurred_at)
    )
    tax = switch_tax_actual(
        before=before,
        from_model=switch.price_version_from.api_model.api_id,
        to_model=record.model,
        prices_from=prices_from,
        prices_to=record.prices,
        usage=record.usage,
        at=event.occurred_at,
        platform=request_platform(record.request_id),
    )
    return SwitchReconciliation.objects.create(
        switch=switch,
        usage_event=event,
        actual_input_usd=tax.actual_input_usd,
        counterfactual_stay_usd=tax.stay_usd,
        actual_tax_usd=tax.tax_usd,
        quote_error_usd=tax.tax_usd - switch.quoted_tax_usd,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class SwitchTax:
    actual_input_usd: Decimal  # what the first request after the switch cost, input side
    stay_usd: Decimal  # the same turn on the previous model with its cache (quote engine)
    tax_usd: Decimal  # actual - stay


def switch_tax_actual(
    *,
    before: CacheSnapshot,
    from_model: str,
    to_model: str,
    prices_from: Prices,
    prices_to: Prices,
    usage: Usage,
    at: datetime,
    platform: str | None = None,
) -> SwitchTax:
    """The real tax of a switch, from its first request: the request's input cost minus the
    counterfactual of staying, which the quote engine computes from the cache state just
    before the request (`before`). Pure: the live reconciliation and the log import share it.
    `platform`: where the request ran; staying would have run there too.
    """
    if platform is not None:
        before = dataclasses.replace(before, platform=platform)
    new_tokens = max(usage.total_input_tokens - before.context_tokens, 0)
    figures = quote_compute(
        from_model=from_model,
        to_model=to_model,
        snapshot=before,
        prices_from=prices_from,
        prices_to=prices_to,
        new_tokens=new_tokens,
        now=at,
        to_prefix_tokens=max(usage.total_input_tokens - new_tokens, 0),
    )
    actual = usd_quantize(usage_cost(usage=usage, prices=prices_to).input_side)
    return SwitchTax(actual_input_usd=actual, stay_usd=figures.stay_usd, tax_usd=actual - figures.stay_usd)
