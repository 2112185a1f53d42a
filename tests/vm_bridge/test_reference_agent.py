"""End to end with the reference agent (devstack/agent) on the devstack Messages API emulator:
real turns, a model switch on the same session, transcript usage relayed per request."""

import subprocess
import sys
import time

import httpx
import pytest

from .conftest import REPO, free_port
from .test_relay import relay_args, verify

pytestmark = pytest.mark.skipif(
    not (REPO / "devstack" / "agent" / "__main__.py").exists()
    or not (REPO / "devstack" / "emulator" / "__main__.py").exists(),
    reason="devstack reference agent or emulator missing",
)


@pytest.fixture
def emulator(tmp_path):
    port = free_port()
    log = (tmp_path / "emulator.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "devstack.emulator", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url + "/", timeout=1)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("emulator did not start") from None
            time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait(10)
    log.close()


def test_turns_and_switch_with_reference_agent(start_bridge, receiver, emulator):
    bridge = start_bridge(
        *relay_args(receiver),
        agent=f"{sys.executable} -m devstack.agent",
        env={"ANTHROPIC_API_KEY": "sk-devstack", "ANTHROPIC_BASE_URL": emulator},
    )
    assert bridge.client.get("/health").json()["protocolVersion"] == 1
    session = bridge.new_session(modelId="haiku")
    sid = session["sessionId"]
    assert session["modelId"] == "haiku"
    assert {"haiku", "sonnet"} <= {m["modelId"] for m in session["availableModels"]}

    events = bridge.prompt(sid, "Write one sentence about caching.")
    assert events[-1][0] == "done", events
    assert events[-1][1]["usage"]["outputTokens"] > 0
    assert any(e == "update" and d["update"].get("sessionUpdate") == "agent_message_chunk" for e, d in events)

    r = bridge.post("/session/set_model", {"sessionId": sid, "modelId": "sonnet"})
    assert r.status_code == 200, r.text
    assert bridge.prompt(sid, "And one more.")[-1][0] == "done"

    def requests_by_model():
        return [(r["modelId"], r["source"]) for r in receiver.accepted_records() if r["kind"] == "request"]

    receiver.wait_for(lambda: {m for m, _ in requests_by_model()} == {"haiku", "sonnet"})
    for request in receiver.requests:
        verify(request)
    records = [r for r in receiver.accepted_records() if r["kind"] == "request"]
    assert len({r["id"] for r in records}) == len(records)  # each request reported once
    assert all(r["sessionId"] == sid for r in records)
