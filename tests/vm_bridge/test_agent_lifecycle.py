"""Legacy agents, crashes, restarts, timeouts and graceful shutdown, with real agent processes."""

import os
import signal
import threading
import time

import httpx

from .conftest import TOKEN, agent_cmd


def test_legacy_agent_negotiates_set_model(start_bridge):
    bridge = start_bridge(agent=agent_cmd("--style", "legacy"))
    s = bridge.new_session(modelId="sonnet")
    assert s["modelId"] == "sonnet"
    assert [m["modelId"] for m in s["availableModels"]] == ["default", "haiku", "sonnet", "opus"]
    assert bridge.client.get("/health").json()["switchMethod"] == "set_model"
    r = bridge.post("/session/set_model", {"sessionId": s["sessionId"], "modelId": "opus"})
    assert r.status_code == 200 and r.json()["modelId"] == "opus"
    r = bridge.post("/session/set_model", {"sessionId": s["sessionId"], "modelId": "gpt-5"})
    assert r.status_code == 400
    assert r.json()["code"] == "model_rejected"
    assert len(r.json()["extra"]["availableModels"]) == 4


def test_agent_dying_mid_prompt_then_409_then_restart_then_sigterm(start_bridge):
    bridge = start_bridge()
    old = bridge.new_session()["sessionId"]
    events = bridge.prompt(old, "crash")
    assert [e for e, _ in events] == ["update", "error"]
    assert events[-1][1]["code"] == "agent_session_lost"

    for path, body in (
        ("/session/set_model", {"sessionId": old, "modelId": "haiku"}),
        ("/session/prompt", {"sessionId": old, "prompt": "hi"}),
    ):
        r = bridge.post(path, body)
        assert r.status_code == 409 and r.json()["code"] == "agent_session_lost", (path, r.text, bridge.log())

    # The agent comes back: new sessions work, the old one stays lost.
    fresh = bridge.new_session()["sessionId"]
    assert [e for e, _ in bridge.prompt(fresh, "again")] == ["update", "done"]
    assert bridge.post("/session/cancel", {"sessionId": old}).status_code == 409
    assert "exited with 3" in bridge.log()

    # SIGTERM: the running turn is cancelled (its stream ends), the agent is stopped.
    agent_pid = _agent_pid(bridge.proc.pid)
    result = {}

    def run_prompt():
        with (
            httpx.Client(timeout=20) as c,
            c.stream(
                "POST",
                bridge.url + "/session/prompt",
                json={"sessionId": fresh, "prompt": "slow 10"},
                headers={"Authorization": f"Bearer {TOKEN}"},
            ) as r,
        ):
            result["text"] = r.read().decode()

    t = threading.Thread(target=run_prompt)
    t.start()
    time.sleep(0.4)
    started = time.monotonic()
    bridge.proc.send_signal(signal.SIGTERM)
    # uvicorn re-raises the signal once its shutdown is complete.
    assert bridge.proc.wait(10) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in bridge.log()
    t.join(5)
    assert time.monotonic() - started < 6
    assert '"stopReason":"cancelled"' in result["text"]
    assert not _alive(agent_pid)


def test_agent_timeouts(start_bridge):
    bridge = start_bridge(
        "--agent-timeout",
        "0.5",
        "--prompt-timeout",
        "1.0",
        agent=agent_cmd("--slow-set-model", "3"),
    )
    sid = bridge.new_session()["sessionId"]
    started = time.monotonic()
    r = bridge.post("/session/set_model", {"sessionId": sid, "modelId": "haiku"})
    assert r.status_code == 504 and r.json()["code"] == "agent_timeout"
    assert time.monotonic() - started < 2.5

    events = bridge.prompt(sid, "slow 5")
    assert events[0][0] == "update"
    assert events[-1] == ("error", {"code": "agent_timeout", "message": events[-1][1]["message"], "turn": 1})
    # The timed-out turn was cancelled in the agent, which still serves the session.
    assert bridge.prompt(sid, "ok")[-1][0] == "done"


def _agent_pid(bridge_pid: int) -> int:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as fh:
                        if int(fh.read().rsplit(")", 1)[1].split()[1]) == bridge_pid:
                            return int(entry)
                except (OSError, ValueError, IndexError):
                    continue
        time.sleep(0.05)
    raise AssertionError("no agent child process")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
