"""Model-switch negotiation: read what `session/new` offers and pick how to switch.

Current agents expose the model as a session config option (`category: "model"` or id
"model") switched with `session/set_config_option`; older ones return
`models: {availableModels, currentModelId}` and answer `session/set_model`.
"""

from dataclasses import dataclass, field
from typing import Any

CONFIG_OPTION = "config_option"
SET_MODEL = "set_model"


@dataclass
class ModelState:
    method: str
    current: str | None = None
    available: list[dict[str, Any]] = field(default_factory=list)
    config_id: str | None = None

    def knows(self, model_id: str) -> bool:
        return any(m["modelId"] == model_id for m in self.available)


def _model_option(config_options: Any) -> dict[str, Any] | None:
    if not isinstance(config_options, list):
        return None
    options = [o for o in config_options if isinstance(o, dict)]
    for option in options:
        if option.get("category") == "model":
            return option
    for option in options:
        if option.get("id") == "model":
            return option
    return None


def _flatten_choices(choices: Any) -> list[dict[str, Any]]:
    # Select options come either flat or in groups ({group, name, options: [...]}).
    flat: list[dict[str, Any]] = []
    for choice in choices if isinstance(choices, list) else []:
        if not isinstance(choice, dict):
            continue
        if isinstance(choice.get("options"), list):
            flat.extend(_flatten_choices(choice["options"]))
        elif isinstance(choice.get("value"), str):
            flat.append(
                {
                    "modelId": choice["value"],
                    "name": choice.get("name") or choice["value"],
                    "description": choice.get("description"),
                }
            )
    return flat


def from_config_options(config_options: Any) -> ModelState | None:
    option = _model_option(config_options)
    if option is None:
        return None
    return ModelState(
        method=CONFIG_OPTION,
        current=option.get("currentValue"),
        available=_flatten_choices(option.get("options")),
        config_id=str(option.get("id") or "model"),
    )


def from_legacy_models(models: Any) -> ModelState:
    models = models if isinstance(models, dict) else {}
    available = [
        {"modelId": m["modelId"], "name": m.get("name") or m["modelId"], "description": m.get("description")}
        for m in models.get("availableModels") or []
        if isinstance(m, dict) and isinstance(m.get("modelId"), str)
    ]
    return ModelState(method=SET_MODEL, current=models.get("currentModelId"), available=available)


def from_new_session(result: dict[str, Any]) -> ModelState:
    return from_config_options(result.get("configOptions")) or from_legacy_models(result.get("models"))
