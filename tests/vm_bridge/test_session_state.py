"""The bridge's record of each session's model: what the agent confirmed, late answers included."""

import concurrent.futures
import time

from .conftest import agent_cmd


def _state(bridge, sid) -> dict:
    r = bridge.post("/session/state", {"sessionId": sid})
    assert r.status_code == 200, r.text
    return r.json()


def _agent_model(bridge, sid) -> str:
    return bridge.prompt(sid, "model")[-2][1]["update"]["content"]["text"]


def _wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_switch_answered_after_the_timeout_is_recorded_and_reported(start_bridge):
    bridge = start_bridge("--agent-timeout", "0.5", agent=agent_cmd("--slow-set-model", "1.5"))
    sid = bridge.new_session()["sessionId"]
    assert _state(bridge, sid)["lastSwitch"] is None

    r = bridge.post("/session/set_model", {"sessionId": sid, "modelId": "opus"})
    assert r.status_code == 504 and r.json()["extra"]["pendingModelId"] == "opus"
    state = _state(bridge, sid)
    assert state["modelId"] == "default" and state["switchPending"] == "opus"

    # The agent answers later: the bridge keeps the call open and records what it did.
    _wait_for(lambda: _state(bridge, sid)["switchPending"] is None)
    state = _state(bridge, sid)
    assert state["modelId"] == "opus" == _agent_model(bridge, sid).removeprefix("model: ")
    assert state["lastSwitch"]["modelId"] == "opus"
    assert state["lastSwitch"]["outcome"] == "applied" and state["lastSwitch"]["late"] is True

    # Switching back is not taken for a no-op: it reaches the agent.
    r = bridge.post("/session/set_model", {"sessionId": sid, "modelId": "default"}, timeout=10)
    assert r.status_code in (200, 504)
    _wait_for(lambda: _state(bridge, sid)["modelId"] == "default")
    assert _agent_model(bridge, sid) == "model: default"


def test_a_second_switch_waits_for_the_first_ones_answer(start_bridge):
    bridge = start_bridge("--agent-timeout", "5", agent=agent_cmd("--slow-set-model", "0.3"))
    sid = bridge.new_session()["sessionId"]

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        first = pool.submit(bridge.post, "/session/set_model", {"sessionId": sid, "modelId": "opus"})
        time.sleep(0.1)
        second = pool.submit(bridge.post, "/session/set_model", {"sessionId": sid, "modelId": "haiku"})
        assert first.result().status_code == 200 and second.result().status_code == 200
    assert _state(bridge, sid)["modelId"] == "haiku" == _agent_model(bridge, sid).removeprefix("model: ")


def test_config_option_updates_from_the_agent_change_the_reported_model(start_bridge):
    bridge = start_bridge(agent=agent_cmd())
    sid = bridge.new_session()["sessionId"]
    bridge.prompt(sid, "model sonnet")
    assert _state(bridge, sid)["modelId"] == "sonnet"


def test_state_of_an_unknown_session_is_409(start_bridge):
    bridge = start_bridge(agent=agent_cmd())
    r = bridge.post("/session/state", {"sessionId": "nope"})
    assert r.status_code == 409 and r.json()["code"] == "agent_session_lost"
