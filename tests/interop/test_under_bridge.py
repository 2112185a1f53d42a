"""The agents UNDER vm_bridge (its CLI, as docs/bridge-contract.md describes): new session,
switch to every model the agent offers, a prompt after each, usage in the `done` event,
and the relayed transcript usage equal to what the emulator accounted for each request."""

from __future__ import annotations

import sys
import time

import pytest

from .bridge_harness import Bridge, UsageReceiver
from .conftest import AGENTS, claude_code_env
from .test_real_agents_acp import family_matches

BILLED = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens", "cache_creation")


def _run_under_bridge(*, agent_cmd, env, tmp_path, emulator, expect_switch, extra_agent_env=()):
    workdir = tmp_path / "app"
    workdir.mkdir()
    timings = {}
    started = time.monotonic()
    with UsageReceiver(token="unused") as receiver:
        bridge = Bridge(
            agent_cmd=agent_cmd, env=env, workdir=tmp_path, usage_url=receiver.url, extra_agent_env=extra_agent_env
        )
        receiver.token = bridge.token
        try:
            health = bridge.start()
            timings["start"] = time.monotonic() - started
            assert health["ok"] is True and health["protocolVersion"] == 1
            # The bridge learns how to switch from the first session/new answer.
            assert health["switchMethod"] in (None, expect_switch), health

            t = time.monotonic()
            new = bridge.post("/session/new", {"cwd": str(workdir)})
            assert new.status_code == 200, new.text
            session = new.json()
            timings["session/new"] = time.monotonic() - t
            sid, models = session["sessionId"], [m["modelId"] for m in session["availableModels"]]
            assert len(models) >= 4 and session["modelId"] in models
            assert bridge.http.get("/health").json()["switchMethod"] == expect_switch

            rejected = bridge.post("/session/set_model", {"sessionId": sid, "modelId": "gpt-4o"})
            assert rejected.status_code == 400 and rejected.json()["code"] == "model_rejected", rejected.text
            lost = bridge.post("/session/set_model", {"sessionId": "no-such-session", "modelId": models[0]})
            assert lost.status_code == 409 and lost.json()["code"] == "agent_session_lost", lost.text

            turns = []
            t = time.monotonic()
            for model_id in models:
                switched = bridge.post("/session/set_model", {"sessionId": sid, "modelId": model_id})
                assert switched.status_code == 200, switched.text
                assert switched.json() == {"ok": True, "sessionId": sid, "modelId": model_id}
                before = len(emulator.requests())
                events = bridge.prompt(sid, f"Build step for {model_id}: say hi")
                turns.append((model_id, events, emulator.requests()[before:]))
            timings["switch+prompt each model"] = time.monotonic() - t

            # The relay posts after each turn; give the last batch a moment.
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and len(
                {r["id"] for r in receiver.records() if r["kind"] == "request"}
            ) < len(models):
                time.sleep(0.2)
        except Exception:
            print(bridge.log_tail())
            raise
        finally:
            bridge.stop()
    timings["total"] = time.monotonic() - started
    return sid, models, turns, receiver, timings


def _check_turns(models, turns, emulator):
    log = {r["requestId"]: r for r in emulator.requests()}
    for model_id, events, requests in turns:
        kinds = [e for e, _ in events]
        assert kinds[-1] == "done", (model_id, events[-3:])
        done = events[-1][1]
        assert done["stopReason"] == "end_turn"
        usage = done["usage"]
        assert usage is not None and usage["totalTokens"] > 0, model_id
        updates = [d["update"]["sessionUpdate"] for e, d in events if e == "update"]
        assert "agent_message_chunk" in updates
        assert requests, f"no API request for {model_id}"
        answered = [
            r
            for r in requests
            if r["usage"]["output_tokens"] == usage["outputTokens"]
            and r["usage"]["cache_read_input_tokens"] == usage["cachedReadTokens"]
            and r["usage"]["cache_creation_input_tokens"] == usage["cachedWriteTokens"]
        ]
        assert answered, (model_id, usage, [r["usage"] for r in requests])
        assert family_matches(model_id, answered[-1]["model"]), (model_id, answered[-1]["model"])
    return log


def _check_relay(receiver, log, sid, *, expect_transcript: bool):
    assert receiver.bad_signatures == 0
    records = [r for r in receiver.records() if r["kind"] == "request"]
    assert records, "the bridge relayed no usage"
    assert all(r["sessionId"] == sid for r in records)
    transcript = [r for r in records if r["source"] == "transcript"]
    if expect_transcript:
        assert transcript, records
    for record in transcript:
        # Exact per-request usage: what the emulator billed under that request id.
        # Claude Code rewrites some descriptive fields (inference_geo, speed, iterations, ...)
        # when it writes the line; the billed token classes must come through exactly.
        billed = log[record["requestId"]]
        assert {k: record["usage"].get(k) for k in BILLED} == {k: billed["usage"][k] for k in BILLED}, (record, billed)
        assert record["messageId"] == billed["messageId"]
    return records


def test_reference_agent_under_bridge(emulator, tmp_path):
    env = claude_code_env(emulator.url, tmp_path)
    sid, models, turns, receiver, timings = _run_under_bridge(
        agent_cmd=[sys.executable, "-m", "devstack.agent"],
        env=env,
        tmp_path=tmp_path,
        emulator=emulator,
        expect_switch="config_option",
    )
    assert models == ["default", "haiku", "sonnet", "sonnet[1m]", "opus", "opus[1m]"]
    log = _check_turns(models, turns, emulator)
    _check_relay(receiver, log, sid, expect_transcript=False)
    print(f"reference agent under bridge: {timings}")


@pytest.mark.node
@pytest.mark.parametrize("agent", AGENTS, ids=lambda a: a.key)
def test_real_agent_under_bridge(agent, node_modules, emulator, tmp_path):
    env = claude_code_env(emulator.url, tmp_path)
    sid, models, turns, receiver, timings = _run_under_bridge(
        agent_cmd=["node", str(agent.entry)],
        env=env,
        tmp_path=tmp_path,
        emulator=emulator,
        expect_switch="config_option",
        extra_agent_env=("DISABLE_AUTOUPDATER", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"),
    )
    log = _check_turns(models, turns, emulator)
    records = _check_relay(receiver, log, sid, expect_transcript=True)
    print(
        f"{agent.key} under bridge: models={models} relayed={len(records)} "
        f"timings={ {k: round(v, 1) for k, v in timings.items()} }"
    )
