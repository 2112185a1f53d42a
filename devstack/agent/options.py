"""The model picker the agent offers, as the session config option `model`."""

from __future__ import annotations

from dataclasses import dataclass

LONG_CONTEXT_BETA = "context-1m-2025-08-07"


@dataclass(frozen=True)
class ModelChoice:
    value: str
    name: str
    description: str
    api_model: str
    long_context: bool = False

    @property
    def context_window(self) -> int:
        return 1_000_000 if self.long_context else 200_000


CHOICES = [
    ModelChoice("default", "Default (recommended)", "Sonnet 4.6", "claude-sonnet-4-6"),
    ModelChoice("haiku", "Haiku", "Haiku 4.5: fastest", "claude-haiku-4-5"),
    ModelChoice("sonnet", "Sonnet", "Sonnet 4.6", "claude-sonnet-4-6"),
    ModelChoice("sonnet[1m]", "Sonnet (1M context)", "Sonnet 4.6 with 1M context", "claude-sonnet-4-6", True),
    ModelChoice("opus", "Opus", "Opus 4.6: most capable", "claude-opus-4-6"),
    ModelChoice("opus[1m]", "Opus (1M context)", "Opus 4.6 with 1M context", "claude-opus-4-6", True),
]
BY_VALUE = {c.value: c for c in CHOICES}
DEFAULT = "default"
