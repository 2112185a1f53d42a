"""How long a real model takes to answer, for `--latency realistic`.

A reply's first token comes after a fixed delay plus the time to read the prompt; a prompt token
read from the cache costs a tenth of an uncached one. The rest of the reply streams at the
model family's output speed.

Figures (first token on a short prompt, output tokens per second):
- Sonnet 4.5: 1.80 s and 63 tokens/s; Opus 4.1: 2.67 s and 45 tokens/s (Artificial Analysis, as
  quoted at https://lattice.uptownhr.com/claude-opus-4-5/speed-analysis).
- Haiku 4.5: 0.90 s to the first answer token and 112 tokens/s (https://lmspeed.net/compare/
  model/claude-haiku-4-5-vs-claude-sonnet-4).
- Reading the prompt: Anthropic's prompt-caching cookbook (https://platform.claude.com/cookbook/
  misc-prompt-caching) answers 8 tokens after a 187k-token uncached prompt in 4.9-6.9 s with
  Sonnet 4.5, i.e. about 45k prompt tokens/s beyond the short-prompt delay, and "reduces latency
  by >2x" when the prompt is read from the cache. Haiku and Opus read in proportion to their
  output speed (an assumption: no figure is published), and a cached token at a tenth of the
  cost gives the cookbook's >2x (1.8 + 0.4 s against 1.8 + 4.2 s).
Newer models of a family take the family's figures.
"""

from __future__ import annotations

from dataclasses import dataclass

CACHED_READ_SHARE = 0.1
_SONNET_PROMPT_TOKENS_PER_S = 45_000.0


@dataclass(frozen=True)
class Pace:
    first_token_s: float
    output_tokens_per_s: float

    @property
    def prompt_tokens_per_s(self) -> float:
        return _SONNET_PROMPT_TOKENS_PER_S * self.output_tokens_per_s / FAMILIES["sonnet"].output_tokens_per_s


FAMILIES = {
    "haiku": Pace(0.90, 112.0),
    "sonnet": Pace(1.80, 63.0),
    "opus": Pace(2.67, 45.0),
}
# Fable is the largest model offered: it answers at Opus's pace.
FAMILIES["fable"] = FAMILIES["opus"]


def pace_of(model_id: str) -> Pace:
    family = next((name for name in FAMILIES if f"-{name}-" in f"-{model_id}-"), "sonnet")
    return FAMILIES[family]


def first_token_seconds(model_id: str, *, uncached_tokens: int, cached_tokens: int) -> float:
    pace = pace_of(model_id)
    read = uncached_tokens + CACHED_READ_SHARE * cached_tokens
    return pace.first_token_s + read / pace.prompt_tokens_per_s


def output_seconds(model_id: str, tokens: int) -> float:
    return tokens / pace_of(model_id).output_tokens_per_s
