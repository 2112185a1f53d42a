"""availableModels says, per model, whether the user's plan allows a switch to it and why not."""

import pytest

from billing.subscriptions.services import subscription_set
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def _locks(body: dict) -> dict[str, str | None]:
    assert all(m["allowed"] is (m["lockedReason"] is None) for m in body["availableModels"])
    return {m["modelId"]: m["lockedReason"] for m in body["availableModels"]}


def test_free_user_sees_paid_models_locked_at_start_and_on_get(free_client, bridge):
    started = free_client.post("/api/chat/sessions", format="json").json()
    expected = {
        "haiku": None,
        "sonnet": "subscription_required",
        "sonnet[1m]": "subscription_required",
        "opus": "subscription_required",
        "opus[1m]": "subscription_required",
        "default": "subscription_required",
    }
    assert _locks(started) == expected
    # The agent's own fields are kept as it sent them.
    assert {m["name"] for m in started["availableModels"]} == set(expected)
    got = free_client.get(f"/api/chat/sessions/{started['sessionKey']}").json()
    assert _locks(got) == expected
    assert free_client.get("/api/chat/sessions").status_code == 200


def test_plan_limits_are_model_not_in_plan_and_follow_the_current_plan(pro_client, bridge):
    key = pro_client.post("/api/chat/sessions", format="json").json()["sessionKey"]
    locks = _locks(pro_client.get(f"/api/chat/sessions/{key}").json())
    assert locks["opus"] is None and locks["sonnet"] is None
    assert locks["sonnet[1m]"] == locks["opus[1m]"] == "model_not_in_plan"

    subscription_set(username=pro_client.user.username, plan="max5")
    locks = _locks(pro_client.get(f"/api/chat/sessions/{key}").json())
    assert locks["sonnet[1m]"] is None and locks["opus[1m]"] == "model_not_in_plan"

    subscription_set(username=pro_client.user.username, plan="max5", status="past_due")
    locks = _locks(pro_client.get(f"/api/chat/sessions/{key}").json())
    assert locks["haiku"] is None and locks["sonnet[1m]"] == locks["opus"] == "subscription_required"


@pytest.mark.parametrize("plan", ["free", "pro", "max5"])
def test_each_lock_is_what_a_quote_for_that_model_answers(db, bridge, plan):
    client = client_for(f"{plan}-user", plan)
    started = client.post("/api/chat/sessions", format="json").json()
    for model in started["availableModels"]:
        if model["modelId"] == started["modelId"]:
            continue
        answer = client.post(
            "/api/chat/model/quote", {"sessionKey": started["sessionKey"], "modelId": model["modelId"]}, format="json"
        )
        if model["allowed"]:
            assert answer.status_code == 200, answer.json()
        else:
            assert answer.json()["code"] == model["lockedReason"]


def test_an_agent_model_the_service_does_not_offer_is_locked_as_unknown(pro_client, bridge):
    bridge.available = ["haiku", "sonnet", "fable-preview"]
    started = pro_client.post("/api/chat/sessions", format="json").json()
    assert _locks(started) == {"haiku": None, "sonnet": None, "fable-preview": "unknown_model"}


def test_resume_lists_the_models_again(pro_client, bridge):
    key = pro_client.post("/api/chat/sessions", format="json").json()["sessionKey"]
    resumed = pro_client.post(f"/api/chat/sessions/{key}/resume", format="json").json()
    assert _locks(resumed)["sonnet[1m]"] == "model_not_in_plan"
    assert _locks(pro_client.get(f"/api/chat/sessions/{key}").json()) == _locks(resumed)
