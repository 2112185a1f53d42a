"""The model picker the agent offers, as the session config option `model`.

Which API model a picker id runs is the agent's choice (each Claude Code release maps `haiku`,
`sonnet`, `opus` to its own current models). The reference agent's map is configurable
(`--models haiku=claude-haiku-5-5,sonnet=claude-sonnet-5-5` or DEVSTACK_MODEL_MAP); it names the
API model in each option's description, as Claude Code does, and calls the Messages API with it.
"""

from __future__ import annotations

import dataclasses
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
# Blurbs after the model's name in an option's description, by picker id.
_BLURBS = {
    "haiku": ": fastest",
    "opus": ": most capable",
    "sonnet[1m]": " with 1M context",
    "opus[1m]": " with 1M context",
}


def parse_model_map(text: str | None) -> dict[str, str]:
    """`haiku=claude-haiku-5-5,sonnet=claude-sonnet-5-5` -> {picker id: API model}."""
    mapping: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        picker_id, sep, api_model = part.partition("=")
        if not sep or picker_id.strip() not in BY_VALUE or not api_model.strip():
            raise ValueError(f"bad model map entry {part!r}: expected <picker id>=<API model>, ids {list(BY_VALUE)}")
        mapping[picker_id.strip()] = api_model.strip()
    return mapping


def display_name(api_model: str) -> str:
    """`claude-haiku-5-5` -> `Haiku 5.5`."""
    family, *version = api_model.removeprefix("claude-").split("-")
    return " ".join([family.title(), ".".join(version)]).strip()


def choices_for(model_map: dict[str, str]) -> list[ModelChoice]:
    """The picker with `model_map` applied; a 1M variant follows its base id unless mapped itself."""
    chosen = []
    for choice in CHOICES:
        api_model = model_map.get(choice.value) or model_map.get(choice.value.removesuffix("[1m]"))
        if api_model is None:
            chosen.append(choice)
            continue
        description = display_name(api_model) + _BLURBS.get(choice.value, "")
        chosen.append(dataclasses.replace(choice, api_model=api_model, description=description))
    return chosen
