"""The reference agent's configurable picker map."""

import pytest

from devstack.agent import options


def test_the_map_replaces_api_models_and_descriptions():
    chosen = {
        c.value: c
        for c in options.choices_for(options.parse_model_map("haiku=claude-haiku-5-5,sonnet=claude-sonnet-5-5"))
    }

    assert (chosen["haiku"].api_model, chosen["haiku"].description) == ("claude-haiku-5-5", "Haiku 5.5: fastest")
    assert chosen["sonnet[1m]"].api_model == "claude-sonnet-5-5" and chosen["sonnet[1m]"].long_context
    assert chosen["opus"] == options.BY_VALUE["opus"]  # not in the map: the built-in choice


@pytest.mark.parametrize("bad", ["haiku", "gizmo=claude-haiku-5-5", "haiku="])
def test_a_bad_map_entry_is_refused(bad):
    with pytest.raises(ValueError, match="bad model map entry"):
        options.parse_model_map(bad)
