"""What a replay of transcripts found: per request, per switch, per session and in total."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from billing.catalog.cost_engine import CostBreakdown, Usage
from billing.models import PriceVersion
from billing.money import ZERO, usd_str
from billing.usage.cache_health import cache_hit_rate, prediction_within_tolerance
from billing.usage.transcript_import.parsing import LogRequest, ParseStats
from mk0r.timefmt import iso_z


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
        self.within_tolerance += prediction_within_tolerance(predicted=predicted, actual=actual)
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
        return cache_hit_rate(read=self.eligible_read, prompt=self.eligible_prompt)

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
                "longIdLinesSkipped": self.stats.long_id_lines,
                "unpriceableRequests": self.stats.unpriceable_requests,
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
