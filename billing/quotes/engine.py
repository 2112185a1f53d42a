"""The switch quote: what the next turn costs if the session switches model, versus staying.

Pure and ORM-free: the caller passes the session's `CacheSnapshot` and both models'
`Prices`. Definitions (DESIGN.md §6):

- stay   = input-side cost of the next turn on the current model, with its real cache:
           read what is still warm, write the rest of the prompt (the prompt's tail,
           from the last warm breakpoint to the new message, becomes the next entry).
- switch = the same next turn on the new model with *its* real cache: usually nothing
           warm, so the whole prompt is written; after A->B->A within the TTL, the earlier
           prefix is read back.
- tax    = switch - stay, split into
    rateDelta     = the turn on the new model *if its cache were in the same state as the
                    current one* minus stay (price and tokenizer differences only), and
    cacheRebuild  = switch minus that same-state turn (what the cold cache adds).
  When the current model's cache already expired, both are cold and rebuild is zero.
- A prompt below a model's minimum cacheable length is plain input, nothing is written.

Token counts are in each model's own tokens. Without an exact count of the prefix for
the new model, it is estimated from both tokenizers' ranges against the legacy tokenizer:
point = P * mid(to) / mid(from), range [P * low(to) / high(from), P * high(to) / low(from)].
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal

from billing.caps.cap_model import CapModel, cap_percent, cap_pick, cap_units
from billing.catalog.price_snapshots import Prices
from billing.money import MICRO_USD, ZERO
from billing.quotes.cache_tracker import TTL_DELTAS, CacheSnapshot


@dataclass(frozen=True, slots=True)
class SteadyTurn:
    """A typical turn once both caches are warm: it reads the whole current prefix, writes
    the tail (the previous reply and the new message) and answers."""

    write_tokens: int
    output_tokens: int


# The typical warm turn of the real Claude Code transcripts in data/claude-code-logs (437 files,
# 26,132 warm main-chain requests as the transcript import counts them; lower medians), measured
# with `.venv/bin/python -m bench.turn_medians`: 774 tokens written, 150 output. A session's own
# recent turns replace it once it has any (`billing.quotes.switch_context`).
LOGGED_TURN = SteadyTurn(write_tokens=774, output_tokens=150)

# First-token latency: uncached prompt tokens are prefilled at roughly these rates
# (tokens/s per family; rough public TTFT observations, to be calibrated against the
# measured first-token times of real turns). Cache reads are treated as free.
PREFILL_TOKENS_PER_SECOND = {"haiku": 40_000, "sonnet": 20_000, "opus": 12_000}
DEFAULT_PREFILL_TOKENS_PER_SECOND = 12_000

WARM, PARTIAL, COLD, BELOW_MINIMUM, NONE = "warm", "partial", "cold", "below_minimum", "none"

W_ALREADY_COLD = "already_cold"
W_BELOW_MINIMUM = "below_minimum"
W_FLAPPING = "flapping"
W_SWITCH_BACK_WARM = "switch_back_warm"
W_FIRST_TURN_FREE = "first_turn_free"
W_TOKENIZER_ESTIMATE = "tokenizer_estimate"
W_TOKENIZER_MEASURED = "tokenizer_measured"


@dataclass(frozen=True, slots=True)
class SwitchEvent:
    """A past switch of the session (canonical API ids), for flapping detection."""

    at: datetime
    from_model: str
    to_model: str


@dataclass(slots=True)
class QuoteFigures:
    """The quote's figures; money fields are already rounded to the micro-dollar."""

    prefix_from: int
    prefix_to: int
    prefix_to_low: int
    prefix_to_high: int
    cache_state_from: str
    cache_state_to: str
    stay_usd: Decimal
    switch_usd: Decimal
    tax_usd: Decimal
    cache_rebuild_usd: Decimal
    rate_delta_usd: Decimal
    steady_state_delta_usd: Decimal
    break_even_turns: int | None
    ttft_penalty_ms: int
    cap_percent: Decimal | None
    warnings: list[str]
    price_version_from: str
    price_version_to: str
    # The conversation counted on both models (from, to), when the new model's prefix was measured.
    measured: tuple[int, int] | None = None

    def to_json(self) -> dict:
        return {
            "prefixTokens": {
                "from": self.prefix_from,
                "to": self.prefix_to,
                "toLow": self.prefix_to_low,
                "toHigh": self.prefix_to_high,
                "measured": None if self.measured is None else {"from": self.measured[0], "to": self.measured[1]},
            },
            "cacheState": {"from": self.cache_state_from, "to": self.cache_state_to},
            "nextTurn": {"stayUsd": str(self.stay_usd), "switchUsd": str(self.switch_usd)},
            "taxUsd": str(self.tax_usd),
            "breakdown": {
                "cacheRebuildUsd": str(self.cache_rebuild_usd),
                "rateDeltaUsd": str(self.rate_delta_usd),
            },
            "steadyStateDeltaUsdPerTurn": str(self.steady_state_delta_usd),
            "breakEvenTurns": self.break_even_turns,
            "ttftPenaltyMs": self.ttft_penalty_ms,
            "capPercent": None if self.cap_percent is None else str(self.cap_percent),
            "warnings": list(self.warnings),
            "priceVersion": {"from": self.price_version_from, "to": self.price_version_to},
            "currency": "USD",
        }


def _prompt_cost(prices: Prices, plain: int, write: int, ttl: str, read: int, output: int = 0) -> int:
    """Exact cost, in picodollars, of a prompt split into plain input / cache write / cache read
    (+ output). Integers: a quote is a dozen of these, and int arithmetic is exact and fast."""
    threshold = prices.long_context_threshold
    rates = prices.base if threshold is None else prices.rates_for(plain + write + read)
    return (
        plain * rates.input_pico
        + write * (rates.write_1h_pico if ttl == "1h" else rates.write_5m_pico)
        + read * rates.read_pico
        + output * rates.output_pico
    )


def _usd(pico: int) -> Decimal:
    """Picodollars as dollars, rounded to the micro-dollar (half to even, as usd_quantize)."""
    return Decimal(pico).scaleb(-12).quantize(MICRO_USD, ROUND_HALF_EVEN)


def _split(prices: Prices, prompt: int, read: int) -> tuple[int, int, int]:
    """(plain, write, read) of a prompt whose breakpoint is at its end."""
    minimum = prices.min_cacheable_tokens
    if prompt <= 0 or (minimum is not None and prompt < minimum):  # = not Prices.is_cacheable
        return prompt, 0, 0
    return 0, prompt - read, read


def _state(snapshot: CacheSnapshot, model: str, conversation: int, cacheable: bool, read: int) -> str:
    if conversation == 0:
        return NONE
    if not cacheable:
        return BELOW_MINIMUM
    if read == 0:
        return COLD if model in snapshot.seen_models else NONE
    # Warm = nothing this model had cached has expired and it is the model in use;
    # a warm entry of another model covers only the conversation up to the switch away.
    if model == snapshot.current_model:
        for entry in snapshot.entries_of(model):
            if entry.prefix_tokens > read:
                return PARTIAL
        return WARM
    return PARTIAL


def _is_flapping(recent_switches: Iterable, from_model: str, to_model: str, now: datetime, window) -> bool:
    """A switch to_model -> from_model within the TTL, so this switch would go straight back."""
    for event in recent_switches:
        if isinstance(event, SwitchEvent):
            at, src, dst = event.at, event.from_model, event.to_model
        else:
            at, src, dst = event
        if src == to_model and dst == from_model and now - at < window:
            return True
    return False


def _ttft_ms(prices: Prices, uncached_tokens: int) -> int:
    rate = PREFILL_TOKENS_PER_SECOND.get(prices.family, DEFAULT_PREFILL_TOKENS_PER_SECOND)
    return uncached_tokens * 1000 // rate


def quote_compute(
    *,
    from_model: str,
    to_model: str,
    snapshot: CacheSnapshot,
    prices_from: Prices,
    prices_to: Prices,
    new_tokens: int = 0,
    now: datetime,
    plan: str | None = None,
    cap: CapModel | Mapping[str, CapModel] | None = None,
    recent_switches: Iterable = (),
    to_prefix_tokens: int | None = None,
    measured: tuple[int, int] | None = None,
    steady_turn: SteadyTurn = LOGGED_TURN,
) -> QuoteFigures:
    """Quote switching the session from `from_model` to `to_model` (canonical API ids) at `now`.

    `new_tokens`: size of the next user message in `from_model`'s tokens.
    `to_prefix_tokens`: the conversation counted with the new model (`messages.count_tokens`),
    when known; otherwise it is estimated. `measured`: the session's messages counted on both
    models (`/session/count_tokens`), which leaves out its system prompt and tools: the
    prefix is scaled by their ratio, and only the part they do not cover keeps the tokenizers'
    range (the `tokenizer_measured` warning says so). `cap` (one `CapModel`, or one per `plan`) turns on
    `capPercent`: the tax's share of the weekly cap. `recent_switches`: the session's recent
    `SwitchEvent`s (or (at, from, to) tuples), for the flapping warning. `steady_turn`: the
    session's typical warm turn (in `from_model`'s tokens), for the steady-state figures.
    """
    if new_tokens < 0 or (to_prefix_tokens is not None and to_prefix_tokens < 0):
        raise ValueError("token counts must not be negative")
    if measured is not None and (measured[0] <= 0 or measured[1] < 0 or not snapshot.context_tokens):
        measured = None  # nothing counted, or nothing to scale
    warnings: list[str] = []
    ttl = snapshot.ttl_policy
    p_from = snapshot.context_tokens

    # --- the conversation in the new model's tokens ---
    if to_prefix_tokens is not None:
        p_to = low = high = to_prefix_tokens
        n_to = _scale_point(new_tokens, prices_from, prices_to) if p_from else new_tokens
    elif prices_from.tokenizer_family == prices_to.tokenizer_family:
        p_to = low = high = p_from
        n_to = new_tokens
    else:
        f_lo, f_hi, t_lo, t_hi = (
            prices_from.tokenizer_low_k,
            prices_from.tokenizer_high_k,
            prices_to.tokenizer_low_k,
            prices_to.tokenizer_high_k,
        )
        if measured is not None:
            counted_from, counted_to = measured
            p_to = (p_from * counted_to * 2 + counted_from) // (counted_from * 2)  # half up
            n_to = (new_tokens * counted_to * 2 + counted_from) // (counted_from * 2)
            # The system prompt and tools: the known prefix beyond the counted messages.
            rest = max(p_from - counted_from, 0)
            low = min(p_to, counted_to + rest * t_lo // f_hi)
            high = max(p_to, counted_to - (-rest * t_hi // f_lo))
            warnings.append(W_TOKENIZER_MEASURED)
        else:
            p_to = _scale_point(p_from, prices_from, prices_to)
            n_to = _scale_point(new_tokens, prices_from, prices_to)
            low = p_from * t_lo // f_hi
            high = -(-p_from * t_hi // f_lo)
            if p_from:
                warnings.append(W_TOKENIZER_ESTIMATE)

    # --- staying ---
    prompt_from = p_from + new_tokens
    stay_read = snapshot.warm_prefix(model=from_model, prefix_tokens=p_from, at=now) if p_from else 0
    s_plain, s_write, s_read = _split(prices_from, prompt_from, stay_read)
    stay = _prompt_cost(prices_from, s_plain, s_write, ttl, s_read)
    state_from = _state(snapshot, from_model, p_from, s_plain == 0, s_read)

    # --- switching ---
    prompt_to = p_to + n_to
    to_read = 0
    if p_to:
        # An estimated prefix may undershoot an entry that truly fits: allow up to the range's top.
        to_read = min(snapshot.warm_prefix(model=to_model, prefix_tokens=high, at=now), p_to)
    w_plain, w_write, w_read = _split(prices_to, prompt_to, to_read)
    switch = _prompt_cost(prices_to, w_plain, w_write, ttl, w_read)
    state_to = _state(snapshot, to_model, p_to, w_plain == 0, w_read)

    # --- the same turn on the new model with the current model's cache state ---
    mapped_read = s_read if p_to == p_from else (s_read * p_to // p_from if p_from else 0)
    if mapped_read == w_read:  # the new model's cache is exactly as warm: nothing to rebuild
        same_state = switch
    else:
        m_plain, m_write, m_read = _split(prices_to, prompt_to, mapped_read)
        same_state = _prompt_cost(prices_to, m_plain, m_write, ttl, m_read)

    # From the rounded figures the user sees, so that switch - stay = tax to the micro-dollar;
    # rebuild is the remainder, so that the two parts add up to the tax exactly too.
    stay_usd, switch_usd = _usd(stay), _usd(switch)
    tax = switch_usd - stay_usd
    rate_delta = _usd(same_state) - stay_usd
    rebuild = tax - rate_delta

    # --- steady state: both warm, a typical turn (with the given new message, when there is one) ---
    out = steady_turn.output_tokens
    write = new_tokens + out if new_tokens else steady_turn.write_tokens
    out_to = _scale_point(out, prices_from, prices_to)
    write_to = n_to + out_to if new_tokens else _scale_point(write, prices_from, prices_to)
    steady = _usd(
        _prompt_cost(prices_to, 0, write_to, ttl, p_to, out_to) - _prompt_cost(prices_from, 0, write, ttl, p_from, out)
    )
    if tax <= ZERO:
        break_even = 0
    elif steady < ZERO:
        # The first turn by which the per-turn saving has covered the tax (Decimal `//`
        # truncates toward zero, so round up explicitly).
        break_even = int((tax / -steady).to_integral_value(rounding=ROUND_CEILING))
    else:
        break_even = None

    ttft = _ttft_ms(prices_to, w_plain + w_write) - (
        _ttft_ms(prices_from, s_plain + s_write) if s_write or s_plain else 0
    )

    # --- weekly cap (plan users) ---
    chosen_cap = cap_pick(cap=cap, plan=plan) if cap is not None else None
    percent = None
    if chosen_cap is not None:
        units = cap_units(
            cap=chosen_cap,
            api_model=to_model,
            family=prices_to.family,
            input_tokens=w_plain,
            write_tokens=w_write,
            read_tokens=w_read,
        ) - cap_units(
            cap=chosen_cap,
            api_model=from_model,
            family=prices_from.family,
            input_tokens=s_plain,
            write_tokens=s_write,
            read_tokens=s_read,
        )
        percent = cap_percent(units=units, cap=chosen_cap)

    # --- warnings ---
    if p_from == 0:
        warnings.append(W_FIRST_TURN_FREE)
    elif state_from in (COLD, NONE):
        warnings.append(W_ALREADY_COLD)
    if state_from == BELOW_MINIMUM or state_to == BELOW_MINIMUM:
        warnings.append(W_BELOW_MINIMUM)
    if w_read:
        warnings.append(W_SWITCH_BACK_WARM)
    if recent_switches and _is_flapping(recent_switches, from_model, to_model, now, TTL_DELTAS[ttl]):
        warnings.append(W_FLAPPING)

    # Positional, in field order: this constructor is a sizeable share of a quote's time.
    return QuoteFigures(
        p_from, p_to, low, high, state_from, state_to, stay_usd, switch_usd, tax, rebuild, rate_delta, steady,
        break_even, max(ttft, 0), percent, warnings, prices_from.label, prices_to.label,
        measured if W_TOKENIZER_MEASURED in warnings else None,
    )  # fmt: skip


def _scale_point(tokens: int, prices_from: Prices, prices_to: Prices) -> int:
    """Point estimate of `tokens` (from-model tokens) in the to-model's tokens, rounded half up."""
    if not tokens or prices_from.tokenizer_family == prices_to.tokenizer_family:
        return tokens
    mid_from = prices_from.tokenizer_low_k + prices_from.tokenizer_high_k
    mid_to = prices_to.tokenizer_low_k + prices_to.tokenizer_high_k
    return (tokens * mid_to * 2 + mid_from) // (mid_from * 2)
