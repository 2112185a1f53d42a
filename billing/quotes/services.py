"""Switch quotes for live sessions: build, persist, and check one when it is confirmed.

`session` arguments are agent sessions passed in by the caller (billing never imports
the sessions app): anything with `pk`, `key`, `model_id`, `model_map` and `cache_ttl`; `context` is what
the caller read with it (`billing.quotes.switch_context`).
"""

import dataclasses
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone

from billing.caps.plan_caps import cap_model_for_plan
from billing.catalog.selectors import NoPriceVersion, UnknownModel, model_priced, session_api_models
from billing.models import BillingMode, PriceVersion, Quote, SwitchOutcome, SwitchRecord
from billing.quotes.engine import LOGGED_TURN, QuoteFigures, quote_compute
from billing.quotes.switch_context import SwitchContext
from billing.subscriptions.entitlements import subscription_for
from mk0r.db import RowUpdate, insert_row
from mk0r.errors import ServiceError
from mk0r.timefmt import iso_z


class QuoteNotFound(ServiceError):
    status_code = 404
    code = "quote_not_found"
    message = "No such quote."


class QuoteMismatch(ServiceError):
    status_code = 409
    code = "quote_mismatch"
    message = "The quote was made for another switch."


class QuoteUsed(ServiceError):
    status_code = 409
    code = "quote_used"
    message = "The quote has already been used."


class QuoteExpired(ServiceError):
    status_code = 410
    code = "quote_expired"
    message = "The quote has expired; ask for a new one."


class QuoteStale(ServiceError):
    status_code = 409
    code = "quote_stale"
    message = "The session changed since the quote was made; confirm the new quote."


class ConfirmationRequired(ServiceError):
    status_code = 409
    code = "confirmation_required"
    message = "The switch has a cost; confirm the quote to go ahead."


@dataclasses.dataclass(frozen=True)
class Draft:
    """A computed, not yet stored, quote."""

    from_model_id: str
    to_model_id: str
    figures: QuoteFigures
    version_from: PriceVersion
    version_to: PriceVersion
    ttl: str


def _priced_pair(*, session, to_model_id: str, now: datetime):
    # What the session's own agent says each picker id means, the catalog's aliases otherwise.
    session_map = session_api_models(session.model_map)
    return (
        model_priced(model_id=session.model_id, at=now, session_map=session_map),
        model_priced(model_id=to_model_id, at=now, session_map=session_map),
    )


def quote_tokenizer_change(
    *, session, context: SwitchContext, to_model_id: str, now: datetime
) -> tuple[str, str] | None:
    """The (current, new) API models whose tokens a quote for this switch would be estimated
    in, when counting the conversation on both (`quote_draft`'s `measured`) can replace the
    estimate: the switch crosses tokenizers and the session has a conversation."""
    if not context.snapshot.context_tokens:
        return None
    priced_from, priced_to = _priced_pair(session=session, to_model_id=to_model_id, now=now)
    if priced_from.prices.tokenizer_family == priced_to.prices.tokenizer_family:
        return None
    return priced_from.resolved.api_id, priced_to.resolved.api_id


def quote_draft(
    *, user, session, context: SwitchContext, to_model_id: str, now: datetime, measured: tuple[int, int] | None = None
) -> Draft:
    """What switching `session` to `to_model_id` costs at `now`, from its real cache state.
    `measured`: the conversation counted on the current and the new model, when it was."""
    priced_from, priced_to = _priced_pair(session=session, to_model_id=to_model_id, now=now)
    version_from, version_to = priced_from.version, priced_to.version
    prices_from, prices_to = priced_from.prices, priced_to.prices
    snapshot = context.snapshot
    if snapshot.ttl_policy != session.cache_ttl:
        # One TTL truth: the session's (the plan's default until its agent's writes showed the
        # one it uses, then that one; the usage relay keeps it so).
        snapshot = dataclasses.replace(snapshot, ttl_policy=session.cache_ttl)
    subscription = subscription_for(user=user)
    cap = None
    if subscription.billing_mode == BillingMode.OAUTH:
        # The user's own calibration, when their rate-limit events gave one.
        cap = cap_model_for_plan(
            plan=subscription.plan, prices=[prices_from, prices_to], ttl=snapshot.ttl_policy, user=user
        )
    figures = quote_compute(
        from_model=priced_from.resolved.api_id,
        to_model=priced_to.resolved.api_id,
        snapshot=snapshot,
        prices_from=prices_from,
        prices_to=prices_to,
        now=now,
        plan=subscription.plan,
        cap=cap,
        recent_switches=context.recent_switches,
        steady_turn=context.steady_turn or LOGGED_TURN,
        measured=measured,
    )
    return Draft(session.model_id, to_model_id, figures, version_from, version_to, snapshot.ttl_policy)


def quote_payload(*, draft: Draft, quote_id, expires_at: datetime | None) -> dict[str, Any]:
    return {
        "id": str(quote_id) if quote_id else None,
        "fromModelId": draft.from_model_id,
        "toModelId": draft.to_model_id,
        "ttl": draft.ttl,
        **draft.figures.to_json(),
        "expiresAt": iso_z(expires_at),
    }


def quote_store(*, user, session, draft: Draft, now: datetime) -> Quote:
    quote = Quote(
        user=user,
        session_id=session.pk,
        from_model_id=draft.from_model_id,
        to_model_id=draft.to_model_id,
        price_version_from=draft.version_from,
        price_version_to=draft.version_to,
        tax_usd=draft.figures.tax_usd,
        expires_at=now + timedelta(seconds=settings.QUOTE_TTL_SECONDS),
    )
    quote.payload = quote_payload(draft=draft, quote_id=quote.id, expires_at=quote.expires_at)
    # An offer for QUOTE_TTL_SECONDS: were it lost to a database crash, its confirm would answer
    # quote_not_found and the picker would ask again. So it need not wait for a disk flush.
    insert_row(quote, durable=False)
    return quote


def quote_create(
    *, user, session, context: SwitchContext, to_model_id: str, now: datetime, measured: tuple[int, int] | None = None
) -> Quote:
    draft = quote_draft(
        user=user, session=session, context=context, to_model_id=to_model_id, now=now, measured=measured
    )
    return quote_store(user=user, session=session, draft=draft, now=now)


def _measured_of(quote: Quote) -> tuple[int, int] | None:
    """The counts a quote was made with: its confirmation is checked against the same ones."""
    measured = (quote.payload.get("prefixTokens") or {}).get("measured")
    return (measured["from"], measured["to"]) if measured else None


def _materially_different(quoted: Quote, draft: Draft) -> bool:
    shown = quoted.payload
    if shown["cacheState"] != {"from": draft.figures.cache_state_from, "to": draft.figures.cache_state_to}:
        return True
    if (quoted.price_version_from_id, quoted.price_version_to_id) != (
        draft.version_from.pk,
        draft.version_to.pk,
    ):
        return True
    allowed = max(abs(quoted.tax_usd) * settings.QUOTE_STALE_TOLERANCE, Decimal("0.0001"))
    return abs(draft.figures.tax_usd - quoted.tax_usd) > allowed


@dataclasses.dataclass(frozen=True)
class Confirmation:
    """The quote a switch goes ahead under, or the error that stops it (raised by the caller
    once its transaction has committed, so a fresh quote in the error is kept)."""

    quote: Quote | None
    payload: dict[str, Any] | None
    draft: Draft | None
    error: ServiceError | None = None


def switch_confirmation(
    *, user, session, context: SwitchContext, to_model_id: str, now: datetime, quote_id=None
) -> Confirmation:
    """Decide whether a switch may go ahead. Call while holding the session's lease."""
    if quote_id is None:
        draft = quote_draft(user=user, session=session, context=context, to_model_id=to_model_id, now=now)
        if draft.figures.tax_usd > subscription_for(user=user).auto_confirm_threshold:
            quote = quote_store(user=user, session=session, draft=draft, now=now)
            return Confirmation(None, None, draft, ConfirmationRequired(top_level={"quote": quote.payload}))
        return Confirmation(None, quote_payload(draft=draft, quote_id=None, expires_at=None), draft)

    # No row lock needed: a quote belongs to one session, and the session's lease keeps every
    # other switch of it (and so every other claim of this quote) out until this one is written.
    quote = Quote.objects.filter(pk=quote_id, user=user).first()
    if quote is None:
        return Confirmation(None, None, None, QuoteNotFound())
    if quote.session_id != session.pk or quote.to_model_id != to_model_id:
        return Confirmation(None, None, None, QuoteMismatch(extra={"quoteId": str(quote.pk)}))
    if quote.used_at is not None:
        return Confirmation(None, None, None, QuoteUsed(extra={"quoteId": str(quote.pk)}))
    if quote.expires_at <= now:
        return Confirmation(None, None, None, QuoteExpired(extra={"quoteId": str(quote.pk)}))
    draft = quote_draft(
        user=user, session=session, context=context, to_model_id=to_model_id, now=now, measured=_measured_of(quote)
    )
    if quote.from_model_id != session.model_id or _materially_different(quote, draft):
        fresh = quote_store(user=user, session=session, draft=draft, now=now)
        return Confirmation(None, None, draft, QuoteStale(top_level={"quote": fresh.payload}))
    return Confirmation(quote, quote.payload, draft)


def switch_record_build(
    *,
    user,
    session,
    confirmation: Confirmation,
    outcome: str,
    latency_ms: int | None,
    error_code: str = "",
    error_message: str = "",
) -> SwitchRecord:
    """The ledger row of one switch that reached the agent, not yet written."""
    draft = confirmation.draft
    return SwitchRecord(
        user=user,
        session_id=session.pk,
        quote=confirmation.quote,
        from_model_id=draft.from_model_id,
        to_model_id=draft.to_model_id,
        price_version_from=draft.version_from,
        price_version_to=draft.version_to,
        quoted_tax_usd=draft.figures.tax_usd if confirmation.quote is None else confirmation.quote.tax_usd,
        quote_payload=confirmation.payload,
        confirmed=confirmation.quote is not None,
        outcome=outcome,
        error_code=error_code,
        error_message=error_message[:500],
        bridge_latency_ms=latency_ms,
    )


def switch_record_reconciled(
    *, user, session, agent_model_id: str, now: datetime, source: str, note: str
) -> SwitchRecord:
    """The ledger row of a reconciliation, not yet written: the session's stored model (from)
    against the model its agent reports (to). `source`: how the agent said it (`agent_state`,
    `usage_model`); `note`: what it said, for the admin reading the ledger."""
    session_map = session_api_models(session.model_map)
    priced_from = model_priced(model_id=session.model_id, at=now, session_map=session_map)
    try:
        priced_to = model_priced(model_id=agent_model_id, at=now, session_map=session_map)
    except (UnknownModel, NoPriceVersion):
        # A model the catalog cannot price yet still gets its row; the price side stays the stored one.
        priced_to = priced_from
    return SwitchRecord(
        user=user,
        session_id=session.pk,
        from_model_id=session.model_id,
        to_model_id=agent_model_id[:32],
        price_version_from=priced_from.version,
        price_version_to=priced_to.version,
        quoted_tax_usd=Decimal(0),
        quote_payload={},
        confirmed=False,
        outcome=SwitchOutcome.RECONCILED,
        error_code=source,
        error_message=note[:500],
    )


def switch_quote_claim(*, record: SwitchRecord, now: datetime) -> list[RowUpdate]:
    """What writing `record` also writes: an applied switch uses up the quote it was confirmed
    with. The caller writes these together with the record (mk0r.db.rows_write)."""
    if record.outcome != SwitchOutcome.APPLIED or record.quote_id is None:
        return []
    return [RowUpdate(Quote, record.quote_id, {"used_at": now}, where={"used_at": None})]


def quotes_prune(*, now: datetime | None = None, batch_size: int = 5000) -> int:
    """Delete the quotes nobody can use any more: expired more than QUOTE_RETENTION_DAYS ago and
    never confirmed. A confirmed quote stays with the ledger row that points at it. Deletes in
    batches, each its own short statement, so that quoting goes on meanwhile; returns the count."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.QUOTE_RETENTION_DAYS)
    stale = Quote.objects.filter(expires_at__lt=cutoff, used_at__isnull=True, switches__isnull=True)
    deleted = 0
    while batch := list(stale.values_list("pk", flat=True)[:batch_size]):
        deleted += Quote.objects.filter(pk__in=batch).delete()[0]
    return deleted
