"""The HTTP contract against one bridge driving a scripted config-option agent."""

import json
import socket

import httpx
import pytest

from .conftest import TOKEN, Bridge, agent_cmd
from .fake_agents.scripted_agent import SECRET

MODEL_IDS = ["default", "haiku", "sonnet", "opus"]


@pytest.fixture(scope="module")
def bridge(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("contract")
    b = Bridge(tmp, "--cwd-root", str(tmp), agent=agent_cmd("--style", "config"))
    yield b
    b.stop()


def test_health(bridge):
    r = bridge.client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["ok"] is True
    assert body["agent"] == {"name": "scripted-agent", "version": "1.0.0"}
    assert body["protocolVersion"] == 1


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}])
def test_bad_or_missing_token_is_401(bridge, headers):
    for method, path in (("GET", "/health"), ("POST", "/session/new")):
        r = httpx.request(method, bridge.url + path, headers=headers, json={"cwd": str(bridge.app_dir)})
        assert r.status_code == 401
        assert r.json() == {"code": "unauthorized", "message": "missing or wrong bearer token", "extra": {}}


def test_new_session_reports_models_and_switch_method(bridge):
    s = bridge.new_session()
    assert s["sessionId"].startswith("sess-")
    assert s["modelId"] == "default"
    assert [m["modelId"] for m in s["availableModels"]] == MODEL_IDS
    assert set(s["availableModels"][1]) == {"modelId", "name", "description"}
    assert bridge.client.get("/health").json()["switchMethod"] == "config_option"


def test_new_session_with_model(bridge):
    s = bridge.new_session(modelId="haiku")
    assert s["modelId"] == "haiku"


def test_switch_via_config_option_and_noop(bridge):
    sid = bridge.new_session()["sessionId"]
    r = bridge.post("/session/set_model", {"sessionId": sid, "modelId": "opus"})
    assert r.status_code == 200
    assert r.json() == {"ok": True, "sessionId": sid, "modelId": "opus"}
    again = bridge.post("/session/set_model", {"sessionId": sid, "modelId": "opus"})
    assert again.json() == {"ok": True, "sessionId": sid, "modelId": "opus"}


def test_unknown_model_is_400_with_list(bridge):
    sid = bridge.new_session()["sessionId"]
    r = bridge.post("/session/set_model", {"sessionId": sid, "modelId": "gpt-5"})
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == "model_rejected"
    assert [m["modelId"] for m in body["extra"]["availableModels"]] == MODEL_IDS
    r = bridge.post("/session/new", {"cwd": str(bridge.app_dir), "modelId": "nope"})
    assert r.status_code == 400 and r.json()["code"] == "model_rejected"


def test_unknown_session_is_409(bridge):
    for path, body in (
        ("/session/set_model", {"sessionId": "sess-nope", "modelId": "haiku"}),
        ("/session/prompt", {"sessionId": "sess-nope", "prompt": "hi"}),
        ("/session/cancel", {"sessionId": "sess-nope"}),
    ):
        r = bridge.post(path, body)
        assert r.status_code == 409, path
        assert r.json()["code"] == "agent_session_lost"


@pytest.mark.parametrize(
    "body", [b"not json", b"[1, 2]", b'{"cwd": 5}', b"{}", b'{"cwd": "relative/dir"}', b"[" * 5000 + b"]" * 5000]
)
def test_invalid_body_is_400(bridge, body):
    r = bridge.client.post("/session/new", content=body)
    assert r.status_code == 400
    assert r.json()["code"] == "invalid_request"


def test_cwd_outside_root_is_400(bridge):
    r = bridge.post("/session/new", {"cwd": "/etc"})
    assert r.status_code == 400 and r.json()["extra"]["field"] == "cwd"


def test_body_over_limit_is_413(bridge):
    big = {"sessionId": "x", "prompt": "a" * (64 * 1024)}
    r = bridge.post("/session/prompt", big)
    assert r.status_code == 413
    assert r.json()["code"] == "payload_too_large"

    # Chunked upload: no Content-Length, the bytes actually read count.
    def chunks():
        yield b'{"sessionId": "x", "prompt": "'
        for _ in range(70):
            yield b"a" * 1024
        yield b'"}'

    r = bridge.client.post("/session/prompt", content=chunks())
    assert r.status_code == 413


def test_lying_content_length_is_caught(bridge):
    # Declares a small body but sends more: the bytes read count, not the header.
    body = b'{"cwd": "' + b"a" * (70 * 1024) + b'"}'
    with socket.create_connection(("127.0.0.1", bridge.port)) as s:
        s.sendall(
            b"POST /session/new HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + TOKEN.encode()
            + b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            + f"{len(body):x}\r\n".encode()
            + body
            + b"\r\n0\r\n\r\n"
        )
        answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413")


def test_prompt_streams_updates_then_done_with_usage(bridge):
    sid = bridge.new_session()["sessionId"]
    events = bridge.prompt(sid, "hello there")
    assert [e for e, _ in events] == ["update", "done"]
    update = events[0][1]
    assert update["sessionId"] == sid
    assert update["update"] == {
        "sessionUpdate": "agent_message_chunk",
        "content": {"type": "text", "text": "echo: hello there"},
    }
    done = events[1][1]
    assert done["stopReason"] == "end_turn"
    assert done["usage"] == {
        "inputTokens": 10,
        "outputTokens": 5,
        "cachedReadTokens": 100,
        "cachedWriteTokens": 50,
        "totalTokens": 265,
    }


def test_usage_counts_that_are_not_numbers_still_end_the_turn_with_done(bridge):
    sid = bridge.new_session()["sessionId"]
    events = bridge.prompt(sid, "odd-usage")
    assert [e for e, _ in events] == ["update", "done"]
    assert events[1][1]["usage"] == {
        "inputTokens": 0,
        "outputTokens": 5,
        "cachedReadTokens": 0,
        "cachedWriteTokens": 50,
        "totalTokens": 55,
    }


def test_prompt_accepts_content_blocks(bridge):
    sid = bridge.new_session()["sessionId"]
    with bridge.client.stream(
        "POST", "/session/prompt", json={"sessionId": sid, "prompt": [{"type": "text", "text": "blocks"}]}
    ) as r:
        text = r.read().decode()
    assert "echo: blocks" in text and "event: done" in text


def test_agent_stderr_never_reaches_clients(bridge):
    sid = bridge.new_session()["sessionId"]
    events = bridge.prompt(sid, "stderr")
    assert SECRET not in json.dumps(events)
    r = bridge.post("/session/set_model", {"sessionId": sid, "modelId": "bogus"})
    assert SECRET not in r.text
    assert SECRET in bridge.log()  # logged server-side only


def test_permission_requests_follow_policy(bridge):
    sid = bridge.new_session()["sessionId"]
    events = bridge.prompt(sid, "permission")
    text = events[0][1]["update"]["content"]["text"]
    assert json.loads(text) == {"outcome": {"outcome": "selected", "optionId": "yes-always"}}


def test_fs_is_confined_to_session_cwd(bridge):
    sid = bridge.new_session()["sessionId"]
    ok = bridge.prompt(sid, "write notes/a.txt")
    assert "ok" in json.loads(ok[0][1]["update"]["content"]["text"])
    assert (bridge.app_dir / "notes" / "a.txt").read_text() == "written by the agent\n"
    read = bridge.prompt(sid, "read notes/a.txt")
    assert json.loads(read[0][1]["update"]["content"]["text"]) == {"ok": {"content": "written by the agent\n"}}
    outside = bridge.prompt(sid, "read ../../../../etc/passwd")
    assert json.loads(outside[0][1]["update"]["content"]["text"]) == {"error": -32602}


def test_cancel(bridge):
    sid = bridge.new_session()["sessionId"]
    r = bridge.post("/session/cancel", {"sessionId": sid})
    assert r.status_code == 200 and r.json() == {"ok": True}


def test_unknown_route_has_error_body(bridge):
    r = bridge.client.get("/nope")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
