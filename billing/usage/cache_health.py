"""Cache health (DESIGN.md §7): hit rate, miss causes, flapping and quote accuracy, and what
the requests cost as billed (`costUsd`: a session's running cost); reads only.

Hit rate = cache_read / (cache_read + cache_write + input) over eligible requests: not the
first request of its stream (a session's main chain, or its sub-agents), a prompt at least
the model's minimum cacheable length, and no longer after the previous request of the stream
than the TTL the stream writes with. Below 80% a session is unhealthy.

A miss's cause is the one stored at ingestion, except where Anthropic's cache diagnostics
(`diagnostics.cache_miss_reason`) name it: that is the better word, and is also counted raw.

Flapping is a switch A->B followed by B->A within the TTL (the second switch finds A's
cache still warm only because the first was needless). For live sessions it is read from
the switch ledger; for imported sessions, which have no ledger, from the main chain's
model sequence.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import groupby
from operator import itemgetter

from django.utils import timezone

from billing.catalog.price_snapshots import prompt_cacheable
from billing.models import SwitchOutcome, SwitchReconciliation, SwitchRecord, UsageEvent
from billing.money import ZERO, usd_str
from billing.quotes.cache_tracker import TTL_DELTAS
from billing.usage.ingestion import DIAGNOSED_MISS_CAUSES
from billing.usage.validation import diagnosed_miss_reason
from mk0r.timefmt import iso_z

HEALTHY_HIT_RATE = 0.80
# A prediction counts as right when it is within 1% of the read Anthropic reported.
PREDICTION_TOLERANCE = Decimal("0.01")
DEFAULT_DAYS = 7
MAX_SESSIONS_LISTED = 100

_FIELDS = (
    "session_key",
    "occurred_at",
    "model",
    "is_sidechain",
    "input_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "cache_read_tokens",
    "predicted_read_tokens",
    "miss_cause",
    "diagnostics",
    "price_version__min_cacheable_tokens",
    "cost_usd",
)


def cache_request_eligible(*, previous_at: datetime | None, at: datetime, ttl: str, cacheable: bool) -> bool:
    """Whether a request counts for the hit rate and the prediction error: not the first of its
    stream, a cacheable prompt, and within `ttl` (the stream's write TTL) of the previous one."""
    return previous_at is not None and cacheable and at - previous_at <= TTL_DELTAS[ttl]


def cache_hit_rate(*, read: int, prompt: int) -> float | None:
    """Cache read over the whole prompt (read + write + input) of the eligible requests."""
    return round(read / prompt, 4) if prompt else None


def prediction_within_tolerance(*, predicted: int, actual: int) -> bool:
    """Whether the tracker's expected read is within PREDICTION_TOLERANCE of the real one."""
    return abs(predicted - actual) <= actual * PREDICTION_TOLERANCE


@dataclass(slots=True)
class Health:
    """Accumulates one session's (or a user's) requests, in time order per session."""

    requests: int = 0
    eligible: int = 0
    read: int = 0
    write: int = 0
    input: int = 0
    predicted: int = 0
    within_tolerance: int = 0
    # What all the requests cost, as billed (each priced from its price version at ingestion).
    cost: Decimal = ZERO
    miss_causes: Counter = field(default_factory=Counter)
    diagnosed: Counter = field(default_factory=Counter)
    flaps: list = field(default_factory=list)
    first_at: datetime | None = None
    last_at: datetime | None = None

    @property
    def hit_rate(self) -> float | None:
        return cache_hit_rate(read=self.read, prompt=self.read + self.write + self.input)

    def merge(self, other: Health) -> None:
        for name in ("requests", "eligible", "read", "write", "input", "predicted", "within_tolerance", "cost"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.miss_causes.update(other.miss_causes)
        self.diagnosed.update(other.diagnosed)
        self.flaps.extend(other.flaps)
        if other.first_at and (self.first_at is None or other.first_at < self.first_at):
            self.first_at = other.first_at
        if other.last_at and (self.last_at is None or other.last_at > self.last_at):
            self.last_at = other.last_at

    def to_json(self) -> dict:
        rate = self.hit_rate
        return {
            "requests": self.requests,
            "eligibleRequests": self.eligible,
            "hitRate": rate,
            "healthy": None if rate is None else rate >= HEALTHY_HIT_RATE,
            "healthyAbove": HEALTHY_HIT_RATE,
            "tokens": {"cacheRead": self.read, "cacheWrite": self.write, "input": self.input},
            "costUsd": usd_str(self.cost),
            "missCauses": dict(self.miss_causes),
            "diagnosedMissReasons": dict(self.diagnosed),
            "flapping": {"count": len(self.flaps), "events": self.flaps[:50]},
            "prediction": {
                "eligible": self.predicted,
                "withinOnePercent": self.within_tolerance,
                "share": round(self.within_tolerance / self.predicted, 4) if self.predicted else None,
            },
            "firstAt": iso_z(self.first_at),
            "lastAt": iso_z(self.last_at),
        }


def _session_health(rows: Iterable[dict], *, ttl: str | None, ledger: list[tuple] | None) -> Health:
    """One session's rows (dicts of `_FIELDS`, in time order); `ttl` is the session's declared
    write TTL when known; `ledger` its applied switches as (at, from, to), None if it has none."""
    health = Health()
    last: dict[bool, datetime] = {}
    policy: dict[bool, str] = {}
    main_switches: list[tuple] = []
    previous_model = None
    writes_5m = writes_1h = 0
    for row in rows:
        at, stream = row["occurred_at"], row["is_sidechain"]
        w5, w1, read, plain = (
            row["cache_write_5m_tokens"],
            row["cache_write_1h_tokens"],
            row["cache_read_tokens"],
            row["input_tokens"],
        )
        prompt = plain + w5 + w1 + read
        stream_ttl = policy.get(stream, ttl or "5m")
        previous = last.get(stream)
        health.requests += 1
        health.cost += row["cost_usd"]
        health.first_at = health.first_at or at
        health.last_at = at
        cacheable = prompt_cacheable(prompt, row["price_version__min_cacheable_tokens"])
        if cache_request_eligible(previous_at=previous, at=at, ttl=stream_ttl, cacheable=cacheable):
            health.eligible += 1
            health.read += read
            health.write += w5 + w1
            health.input += plain
            predicted = row["predicted_read_tokens"]
            if predicted is not None:
                health.predicted += 1
                health.within_tolerance += prediction_within_tolerance(predicted=predicted, actual=read)
        reason = diagnosed_miss_reason(row["diagnostics"])
        if reason:
            health.diagnosed[reason] += 1
        cause = DIAGNOSED_MISS_CAUSES.get(reason) or row["miss_cause"]
        if cause:
            health.miss_causes[str(cause)] += 1
        last[stream] = at
        if w5 or w1:
            policy[stream] = "5m" if w5 else "1h"
        if not stream:
            writes_5m += w5
            writes_1h += w1
            if previous_model is not None and row["model"] != previous_model:
                main_switches.append((at, previous_model, row["model"]))
            previous_model = row["model"]
    session_ttl = ttl or ("1h" if writes_1h and not writes_5m else "5m")
    source = "ledger" if ledger else "models"
    health.flaps = _flaps(ledger if ledger else main_switches, TTL_DELTAS[session_ttl], source)
    return health


def _flaps(switches: list[tuple], window: timedelta, source: str) -> list[dict]:
    """A->B then straight back B->A within `window`."""
    found = []
    for (at1, src1, dst1), (at2, src2, dst2) in zip(switches, switches[1:], strict=False):
        if src2 == dst1 and dst2 == src1 and at2 - at1 < window:
            found.append(
                {
                    "at": iso_z(at2),
                    "models": [src1, dst1],
                    "secondsBetween": int((at2 - at1).total_seconds()),
                    "source": source,
                }
            )
    return found


def _ledgers(*, filters: dict) -> dict[str, list[tuple]]:
    ledgers: dict[str, list[tuple]] = {}
    rows = (
        SwitchRecord.objects.filter(outcome=SwitchOutcome.APPLIED, **filters)
        .order_by("created_at", "pk")
        .values_list("session__key", "created_at", "from_model_id", "to_model_id")
    )
    for key, at, src, dst in rows:
        ledgers.setdefault(str(key), []).append((at, src, dst))
    return ledgers


def usage_session_known(*, user, session_key: str) -> bool:
    """Whether the user has usage under this key (imported sessions have no session row)."""
    return UsageEvent.objects.filter(user=user, session_key=session_key).exists()


def session_cache_health(*, user, session_key: str, session_pk: int | None = None, ttl: str | None = None) -> dict:
    """Cache health of one of the user's sessions, over all its requests. `session_pk` (a live
    session) reads flapping from its switch ledger; `ttl` is its declared write TTL."""
    rows = UsageEvent.objects.filter(user=user, session_key=session_key).order_by("occurred_at", "pk").values(*_FIELDS)
    ledger = _ledgers(filters={"session_id": session_pk}).get(session_key) if session_pk is not None else None
    health = _session_health(rows.iterator(chunk_size=2000), ttl=ttl, ledger=ledger)
    return {"sessionKey": session_key, **health.to_json()}


def user_cache_health(*, user, days: int = DEFAULT_DAYS, now: datetime | None = None) -> dict:
    """The user's cache health over the last `days` days: overall and per session."""
    since = (now or timezone.now()) - timedelta(days=days)
    rows = (
        UsageEvent.objects.filter(user=user, occurred_at__gte=since)
        .order_by("session_key", "occurred_at", "pk")
        .values(*_FIELDS)
    )
    ledgers = _ledgers(filters={"user": user, "created_at__gte": since})
    total = Health()
    sessions = [
        (key, _session_health(session_rows, ttl=None, ledger=ledgers.get(key)))
        for key, session_rows in groupby(rows.iterator(chunk_size=2000), key=itemgetter("session_key"))
    ]
    for _, health in sessions:
        total.merge(health)
    sessions.sort(key=lambda item: item[1].last_at, reverse=True)
    body = total.to_json()
    body["flapping"] = {
        "count": len(total.flaps),
        "sessions": sum(1 for _, h in sessions if h.flaps),
    }
    unhealthy = [key for key, h in sessions if h.hit_rate is not None and h.hit_rate < HEALTHY_HIT_RATE]
    return {
        "days": days,
        "since": iso_z(since),
        **body,
        "sessionCount": len(sessions),
        "unhealthySessions": len(unhealthy),
        "sessions": [{"sessionKey": key, **h.to_json()} for key, h in sessions[:MAX_SESSIONS_LISTED]],
    }


def _percentile(ordered: list, p: float):
    """Nearest-rank percentile of an ascending list."""
    return ordered[max(math.ceil(p * len(ordered)) - 1, 0)]


def quote_accuracy(*, user, days: int | None = None, worst: int = 5, now: datetime | None = None) -> dict:
    """How far the user's quotes were from what their switches really cost (reconciled only).

    Error = actual - quoted (positive: the quote undershot). Percentages are of the actual
    tax, over switches whose actual tax is not zero.
    """
    rows = SwitchReconciliation.objects.filter(switch__user=user).select_related("switch__session")
    since = None
    if days is not None:
        since = (now or timezone.now()) - timedelta(days=days)
        rows = rows.filter(created_at__gte=since)
    rows = list(rows.order_by("created_at"))
    body: dict = {"days": days, "since": iso_z(since), "count": len(rows)}
    if not rows:
        return {**body, "errorUsd": None, "errorPercent": None, "worst": []}
    errors = [r.quote_error_usd for r in rows]
    absolute = sorted(abs(e) for e in errors)
    percents = sorted(abs(r.quote_error_usd) / abs(r.actual_tax_usd) * 100 for r in rows if r.actual_tax_usd != ZERO)
    body["errorUsd"] = {
        "mean": usd_str(sum(errors, ZERO) / len(errors)),
        "meanAbsolute": usd_str(sum(absolute, ZERO) / len(absolute)),
        "p50": usd_str(_percentile(absolute, 0.5)),
        "p90": usd_str(_percentile(absolute, 0.9)),
    }
    body["errorPercent"] = (
        {
            "count": len(percents),
            "mean": str(round(sum(percents, ZERO) / len(percents), 2)),
            "p50": str(round(_percentile(percents, 0.5), 2)),
            "p90": str(round(_percentile(percents, 0.9), 2)),
        }
        if percents
        else None
    )
    body["worst"] = [
        {
            "switchId": r.switch_id,
            "sessionKey": str(r.switch.session.key),
            "fromModelId": r.switch.from_model_id,
            "toModelId": r.switch.to_model_id,
            "quotedTaxUsd": usd_str(r.switch.quoted_tax_usd),
            "actualTaxUsd": usd_str(r.actual_tax_usd),
            "errorUsd": usd_str(r.quote_error_usd),
            "at": iso_z(r.switch.created_at),
        }
        for r in sorted(rows, key=lambda r: abs(r.quote_error_usd), reverse=True)[:worst]
    ]
    return body
