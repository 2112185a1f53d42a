"""Validation of the relay's usage records (docs/bridge-contract.md, usage relay).

The sandbox that signs a batch is under its user's control, so every field is checked to a
bounded type and range before anything is written: a bad record is a 400 naming its index
and field, never a 500 from the database or the arithmetic further on.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.dateparse import parse_datetime

from billing.catalog.cost_engine import Usage, usage_cost
from billing.catalog.price_snapshots import Prices
from billing.catalog.selectors import NoPriceVersion, UnknownModel, model_priced
from billing.models import PriceVersion
from billing.money import usd_quantize
from mk0r.errors import ServiceError

MAX_RECORDS_PER_BATCH = 500
# Per token field of one record. A request reads at most a context window (1M tokens); an
# `acp_turn` record sums a whole turn, so the bound leaves four orders of magnitude of room
# and still fits bigint columns and sums of millions of records.
MAX_TOKENS = 10**10
MAX_TURN = 10**9
# UsageEvent.cost_usd is numeric(14, 6). MAX_TOKENS on every class at the dearest rate in
# the catalog stays far below it (tests/billing/usage/test_validation.py checks); a price row
# that ever broke that would be refused here rather than overflow the column.
MAX_COST_USD = Decimal("99999999.999999")
# A turn's total as the agent reported it, until the turn's transcript records replace it.
ACP_TURN = "acp_turn"
SOURCES = ("transcript", ACP_TURN)
_TOKEN_FIELDS = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "output_tokens",
    "inputTokens",
    "outputTokens",
    "cachedReadTokens",
    "cachedWriteTokens",
)
_SPLIT_FIELDS = ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens")
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_LATEST = datetime(2100, 1, 1, tzinfo=UTC)
# PostgreSQL text cannot hold NUL, and UTF-8 cannot encode an unpaired surrogate.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_DIAGNOSTICS_DEPTH = 4
_DIAGNOSTICS_BYTES = 4096


class InvalidUsageRecord(ServiceError):
    status_code = 400
    code = "invalid_usage_record"


class UnknownUsageSession(ServiceError):
    status_code = 409
    code = "unknown_session"


class _NonFinite:
    """What a bare NaN / Infinity literal in the body decodes to: a value no field accepts."""

    def __repr__(self) -> str:
        return "NaN"


NON_FINITE = _NonFinite()


@dataclasses.dataclass(frozen=True)
class RequestRecord:
    record_id: str
    acp_session_id: str
    at: datetime
    model: str  # canonical API id
    usage: Usage
    source: str
    request_id: str
    is_sidechain: bool
    diagnostics: dict | None
    version: PriceVersion
    prices: Prices
    cost_usd: Decimal
    # "<sessionId>:turn:<n>" when the bridge said which turn the request belongs to, else "".
    turn_key: str


@dataclasses.dataclass(frozen=True)
class RateLimitRecord:
    record_id: str
    acp_session_id: str
    at: datetime
    rate_limit_type: str
    resets_at: datetime | None
    utilization: Decimal | None


def usage_payload_load(body: bytes) -> Any:
    """The request body as JSON; anything a JSON parser chokes on is a 400, not a 500."""
    try:
        return json.loads(body, parse_constant=lambda name: NON_FINITE)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser's stack
        raise ServiceError("The body is not JSON, or nests too deeply.", code="invalid_request") from None


def _fail(index: int, field: str, reason: str) -> InvalidUsageRecord:
    return InvalidUsageRecord(
        f"Record {index}: {field} {reason}", extra={"index": index, "field": field, "reason": reason}
    )


def _text(raw: Mapping, field: str, index: int, *, max_len: int, required: bool = True, prefix: str = "") -> str:
    value = raw.get(field)
    if not required and value in (None, ""):
        return ""
    if not isinstance(value, str) or not 0 < len(value) <= max_len:
        raise _fail(index, prefix + field, f"must be a string of 1 to {max_len} characters")
    if _UNSTORABLE.search(value):
        raise _fail(index, prefix + field, "must not contain NUL or unpaired surrogate characters")
    return value


def _datetime(value: Any, field: str, index: int) -> datetime:
    try:
        parsed = parse_datetime(value) if isinstance(value, str) and len(value) <= 64 else None
        if parsed is not None:
            parsed = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):  # 2026-02-30, an offset past 24 h, year 1 minus an offset
        parsed = None
    if parsed is None:
        raise _fail(index, field, "must be an ISO 8601 date-time")
    if not _EARLIEST <= parsed < _LATEST:
        raise _fail(index, field, "must lie between 2000 and 2100")
    return parsed


def _count(raw: Mapping, field: str, index: int, *, prefix: str = "usage.") -> None:
    value = raw.get(field)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS):
        raise _fail(index, prefix + field, f"must be an integer from 0 to {MAX_TOKENS}")


def _usage(raw: Any, *, ttl: str, index: int) -> Usage:
    if not isinstance(raw, Mapping):
        raise _fail(index, "usage", "must be an object")
    for field in _TOKEN_FIELDS:
        _count(raw, field, index)
    split = raw.get("cache_creation")
    if split is not None:
        if not isinstance(split, Mapping):
            raise _fail(index, "usage.cache_creation", "must be an object")
        for field in _SPLIT_FIELDS:
            _count(split, field, index, prefix="usage.cache_creation.")
    for field in ("service_tier", "inference_geo"):
        _text(raw, field, index, max_len=32, required=False, prefix="usage.")
    return Usage.parse(raw, write_ttl=ttl)


def acp_usage_parse(raw: Any, *, ttl: str) -> Usage:
    """A turn's usage as the agent reported it (ACP, camelCase: the `done` event's), checked as a
    relayed record's usage is; InvalidUsageRecord when it is not an object of bounded counts."""
    return _usage(raw, ttl=ttl, index=0)


def _plain_json(value: Any, depth: int = 0) -> bool:
    """Strings storable, numbers finite, keys strings, at most a few levels deep."""
    if depth > _DIAGNOSTICS_DEPTH:
        return False
    if isinstance(value, str):
        return not _UNSTORABLE.search(value)
    if value is None or isinstance(value, bool | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_plain_json(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_json(k) and _plain_json(v, depth + 1) for k, v in value.items())
    return False


def _diagnostics(raw: Mapping, index: int) -> dict | None:
    value = raw.get("diagnostics")
    if value is None:
        return None
    if not isinstance(value, dict) or not _plain_json(value):
        raise _fail(index, "diagnostics", f"must be a JSON object of plain values, at most {_DIAGNOSTICS_DEPTH} deep")
    if len(json.dumps(value).encode()) > _DIAGNOSTICS_BYTES:
        raise _fail(index, "diagnostics", f"must be at most {_DIAGNOSTICS_BYTES} bytes")
    reason = value.get("cache_miss_reason")
    if not (
        reason is None or isinstance(reason, str) or isinstance(reason, dict) and isinstance(reason.get("type"), str)
    ):
        raise _fail(index, "diagnostics.cache_miss_reason", "must be an object with a string type, a string or null")
    return value


def diagnosed_miss_reason(diagnostics: Mapping | None) -> str | None:
    """Why Anthropic's cache diagnostics say a request missed: the `type` of
    `diagnostics.cache_miss_reason` (`{"type": "tools_changed", "cache_missed_input_tokens": …}`),
    or the reason as a bare string; None without one (null: the diagnosis was still pending)."""
    reason = diagnostics.get("cache_miss_reason") if isinstance(diagnostics, Mapping) else None
    if isinstance(reason, Mapping):
        reason = reason.get("type")
    return reason if isinstance(reason, str) and reason else None


def usage_batch_parse(raw_records: Any, *, ttl_by_session: Mapping[str, str]) -> list[RequestRecord | RateLimitRecord]:
    """Validate a sandbox's whole batch (`ttl_by_session`: the cache TTL of each ACP session id
    the sandbox has; any other sessionId is refused); the first bad record rejects it."""
    if not isinstance(raw_records, list) or not raw_records:
        raise InvalidUsageRecord("records must be a non-empty list.", extra={"index": None, "field": "records"})
    if len(raw_records) > MAX_RECORDS_PER_BATCH:
        raise InvalidUsageRecord(
            f"At most {MAX_RECORDS_PER_BATCH} records per batch.", extra={"index": None, "field": "records"}
        )
    parsed: list[RequestRecord | RateLimitRecord] = []
    for index, raw in enumerate(raw_records):
        if not isinstance(raw, Mapping):
            raise _fail(index, "record", "must be an object")
        record_id = _text(raw, "id", index, max_len=200)
        session_id = _text(raw, "sessionId", index, max_len=200)
        if session_id not in ttl_by_session:
            raise UnknownUsageSession(
                f"Record {index}: no session of this sandbox has that sessionId.",
                extra={"index": index, "field": "sessionId"},
            )
        at = _datetime(raw.get("timestamp"), "timestamp", index)
        kind = raw.get("kind")
        if kind == "rate_limit":
            parsed.append(_rate_limit_record(raw, record_id, session_id, at, index))
        elif kind == "request":
            parsed.append(_request_record(raw, record_id, session_id, at, ttl_by_session[session_id], index))
        else:
            raise _fail(index, "kind", "must be 'request' or 'rate_limit'")
    return parsed


def _resets_at(value: Any, index: int) -> datetime | None:
    """`resetsAt` comes in seconds or milliseconds; anything past year 5000 in seconds is ms."""
    if value is None:
        return None
    if isinstance(value, str):
        return _datetime(value, "resetsAt", index)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 10**14:
        raise _fail(index, "resetsAt", "must be epoch seconds or milliseconds, or a date-time")
    at = datetime.fromtimestamp(value / 1000 if value > 100_000_000_000 else value, tz=UTC)
    if not _EARLIEST <= at < _LATEST:
        raise _fail(index, "resetsAt", "must lie between 2000 and 2100")
    return at


def _utilization(value: Any, index: int) -> Decimal | None:
    if value is None:
        return None
    figure = None
    if isinstance(value, int | float | str) and not isinstance(value, bool) and len(str(value)) <= 32:
        try:
            figure = Decimal(str(value))
        except InvalidOperation:
            figure = None
    # is_finite() first: comparing a NaN raises, and "sNaN" / "Infinity" parse as Decimals.
    if figure is None or not figure.is_finite() or not 0 <= figure <= 100:
        raise _fail(index, "utilization", "must be a finite number from 0 to 100")
    return figure.quantize(Decimal("0.0001"))  # the column keeps four decimals


def _rate_limit_record(raw: Mapping, record_id: str, session_id: str, at: datetime, index: int) -> RateLimitRecord:
    limit_type = _text(raw, "rateLimitType", index, max_len=32)
    resets_at = _resets_at(raw.get("resetsAt"), index)
    return RateLimitRecord(
        record_id, session_id, at, limit_type, resets_at, _utilization(raw.get("utilization"), index)
    )


def usage_turn_key(acp_session_id: str, turn: int) -> str:
    """The key of a turn's usage: the bridge numbers the turns of each ACP session (1, 2, ...)."""
    return f"{acp_session_id}:turn:{turn}"


def _turn_key(raw: Mapping, session_id: str, index: int) -> str:
    turn = raw.get("turn")
    if turn is None:
        return ""
    if isinstance(turn, bool) or not isinstance(turn, int) or not 1 <= turn <= MAX_TURN:
        raise _fail(index, "turn", f"must be an integer from 1 to {MAX_TURN}")
    return usage_turn_key(session_id, turn)


def _request_record(raw: Mapping, record_id: str, session_id: str, at: datetime, ttl: str, index: int) -> RequestRecord:
    model = _text(raw, "model", index, max_len=100, required=False)
    model_id = _text(raw, "modelId", index, max_len=100, required=False)
    if not (model or model_id):
        raise _fail(index, "model", "or modelId is required")
    source = raw.get("source") or ACP_TURN
    if source not in SOURCES:
        raise _fail(index, "source", f"must be one of {', '.join(SOURCES)}")
    if raw.get("isSidechain") not in (None, True, False):
        raise _fail(index, "isSidechain", "must be a boolean")
    request_id = _text(raw, "requestId", index, max_len=100, required=False)
    turn_key = _turn_key(raw, session_id, index)
    usage = _usage(raw.get("usage"), ttl=ttl, index=index)
    diagnostics = _diagnostics(raw, index)
    try:
        priced = model_priced(model_id=model or model_id, at=at)
    except (UnknownModel, NoPriceVersion) as exc:
        raise _fail(index, "model", f"is an unknown model {model or model_id!r}") from exc
    cost = usd_quantize(usage_cost(usage=usage, prices=priced.prices).total)
    if cost > MAX_COST_USD:
        raise _fail(index, "usage", f"costs more than ${MAX_COST_USD} in one record")
    return RequestRecord(
        record_id=record_id,
        acp_session_id=session_id,
        at=at,
        model=priced.resolved.api_id,
        usage=usage,
        source=source,
        request_id=request_id,
        is_sidechain=bool(raw.get("isSidechain")),
        diagnostics=diagnostics,
        version=priced.version,
        prices=priced.prices,
        cost_usd=cost,
        turn_key=turn_key,
    )
