"""Small pure pieces: permission policy, model negotiation, rate-limit extraction, startup refusal."""

import os
import subprocess
import sys

import pytest

from vm_bridge.client_methods import permission_answer
from vm_bridge.model_options import CONFIG_OPTION, SET_MODEL, from_new_session
from vm_bridge.usage import rate_limit_records

from .conftest import REPO

OPTIONS = {
    "options": [
        {"optionId": "a", "kind": "allow_always"},
        {"optionId": "o", "kind": "allow_once"},
        {"optionId": "r", "kind": "reject_once"},
    ]
}


@pytest.mark.parametrize(("policy", "chosen"), [("allow", "a"), ("allow_once", "o"), ("deny", "r")])
def test_permission_policy(policy, chosen):
    assert permission_answer(policy, OPTIONS) == {"outcome": {"outcome": "selected", "optionId": chosen}}


def test_deny_without_reject_option_cancels():
    assert permission_answer("deny", {"options": [{"optionId": "a", "kind": "allow_once"}]}) == {
        "outcome": {"outcome": "cancelled"}
    }


def test_negotiation_prefers_config_option_and_flattens_groups():
    state = from_new_session(
        {
            "sessionId": "s",
            "models": {"availableModels": [{"modelId": "old"}], "currentModelId": "old"},
            "configOptions": [
                {"id": "mode", "category": "mode", "currentValue": "x", "options": []},
                {
                    "id": "llm",
                    "category": "model",
                    "currentValue": "haiku",
                    "options": [
                        {"group": "fast", "name": "Fast", "options": [{"value": "haiku", "name": "Haiku"}]},
                        {
                            "group": "smart",
                            "name": "Smart",
                            "options": [{"value": "opus", "name": "Opus", "description": "d"}],
                        },
                    ],
                },
            ],
        }
    )
    assert (state.method, state.config_id, state.current) == (CONFIG_OPTION, "llm", "haiku")
    assert state.available == [
        {"modelId": "haiku", "name": "Haiku", "description": None},
        {"modelId": "opus", "name": "Opus", "description": "d"},
    ]
    legacy = from_new_session(
        {
            "sessionId": "s",
            "models": {"availableModels": [{"modelId": "sonnet", "name": "S"}], "currentModelId": "sonnet"},
        }
    )
    assert (legacy.method, legacy.current, legacy.available[0]["modelId"]) == (SET_MODEL, "sonnet", "sonnet")


def test_rate_limit_found_in_meta_and_passed_through():
    update = {
        "sessionUpdate": "usage_update",
        "_meta": {
            "_claude/rateLimit": {
                "status": "allowed",
                "rateLimitType": "weekly",
                "resetsAt": 1763805600123,
                "utilization": 0.9,
            }
        },
    }
    [record] = rate_limit_records("s1", {"sessionId": "s1", "update": update})
    assert record["id"] == "s1:rl:1763805600123:weekly:0.9"
    assert record["resetsAt"] == 1763805600123 and record["utilization"] == 0.9


def test_refuses_to_start_without_token():
    env = {k: v for k, v in os.environ.items() if k != "BRIDGE_TOKEN"}
    result = subprocess.run(
        [sys.executable, "-m", "vm_bridge", "--agent-cmd", "true"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "without a token in $BRIDGE_TOKEN" in result.stderr
