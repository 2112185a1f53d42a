"""POST /session/count_tokens: the session's conversation, from the agent's transcript, counted
by the Messages API for other models (docs/bridge-contract.md)."""

import json
import sys

import httpx

from vm_bridge.conversation import transcript_messages

from .test_reference_agent import emulator  # noqa: F401

HAIKU, OPUS_48 = "claude-haiku-4-5", "claude-opus-4-8"


def _reply(events) -> str:
    return "".join(
        data["update"]["content"]["text"]
        for event, data in events
        if event == "update" and data["update"].get("sessionUpdate") == "agent_message_chunk"
    )


def _reference_bridge(start_bridge, emulator_url, **env):  # noqa: F811
    return start_bridge(
        agent=f"{sys.executable} -m devstack.agent",
        env={"ANTHROPIC_API_KEY": "sk-devstack", "ANTHROPIC_BASE_URL": emulator_url, **env},
    )


def test_counts_the_conversation_for_each_model(start_bridge, emulator):  # noqa: F811
    bridge = _reference_bridge(start_bridge, emulator)
    assert bridge.client.get("/health").json()["features"] == ["count_tokens"]
    sid = bridge.new_session(modelId="haiku")["sessionId"]
    prompts = ["Write one sentence about caching.", "Now one about tokenizers, please."]
    conversation = []
    for prompt in prompts:
        events = bridge.prompt(sid, prompt)
        assert events[-1][0] == "done"
        conversation += [{"role": "user", "content": prompt}, {"role": "assistant", "content": _reply(events)}]

    response = bridge.post("/session/count_tokens", {"sessionId": sid, "modelIds": [HAIKU, OPUS_48]})

    assert response.status_code == 200, response.text
    body = response.json()
    # What the Messages API counts for the same messages, asked directly.
    expected = {
        model: httpx.post(
            f"{emulator}/v1/messages/count_tokens",
            json={"model": model, "messages": conversation},
            headers={"x-api-key": "sk-devstack"},
        ).json()["input_tokens"]
        for model in (HAIKU, OPUS_48)
    }
    assert body == {"sessionId": sid, "messages": 4, "inputTokens": expected}
    assert expected[OPUS_48] > expected[HAIKU] > 0  # Opus 4.7+ count more tokens for the same text


def test_a_session_with_no_turn_yet_counts_nothing(start_bridge, emulator):  # noqa: F811
    bridge = _reference_bridge(start_bridge, emulator)
    sid = bridge.new_session()["sessionId"]
    response = bridge.post("/session/count_tokens", {"sessionId": sid, "modelIds": [HAIKU]})
    assert response.json() == {"sessionId": sid, "messages": 0, "inputTokens": {HAIKU: 0}}


def test_errors(start_bridge, emulator):  # noqa: F811
    bridge = _reference_bridge(start_bridge, emulator)
    sid = bridge.new_session()["sessionId"]
    assert bridge.prompt(sid, "Hello")[-1][0] == "done"

    unknown = bridge.post("/session/count_tokens", {"sessionId": "nope", "modelIds": [HAIKU]})
    assert (unknown.status_code, unknown.json()["code"]) == (409, "agent_session_lost")
    for bad in ([], "claude-haiku-4-5", [HAIKU, 3], [HAIKU] * 5, None):
        response = bridge.post("/session/count_tokens", {"sessionId": sid, "modelIds": bad})
        assert (response.status_code, response.json()["code"]) == (400, "invalid_request"), bad
    rejected = bridge.post("/session/count_tokens", {"sessionId": sid, "modelIds": [HAIKU, "claude-nonesuch"]})
    assert (rejected.status_code, rejected.json()["code"]) == (400, "model_rejected")
    assert rejected.json()["extra"]["modelId"] == "claude-nonesuch"
    unauthorized = httpx.post(f"{bridge.url}/session/count_tokens", json={"sessionId": sid, "modelIds": [HAIKU]})
    assert unauthorized.status_code == 401


def test_without_an_api_key_the_bridge_does_not_offer_it(start_bridge):
    # A subscription login (or nothing): the agent has no key the count could use.
    bridge = start_bridge(agent=f"{sys.executable} -m devstack.agent", env={"CLAUDE_CODE_OAUTH_TOKEN": "oauth"})
    assert bridge.client.get("/health").json()["features"] == []
    sid = bridge.new_session()["sessionId"]
    response = bridge.post("/session/count_tokens", {"sessionId": sid, "modelIds": [HAIKU]})
    assert (response.status_code, response.json()["code"]) == (503, "count_tokens_unavailable")


def test_claude_code_transcript_becomes_the_messages_it_sends(tmp_path):
    def line(kind, message, **extra):
        return json.dumps({"type": kind, "message": message, "isSidechain": False, **extra})

    text = lambda t: {"type": "text", "text": t}  # noqa: E731
    path = tmp_path / "s.jsonl"
    path.write_text(
        "\n".join(
            [
                line("user", {"role": "user", "content": "before the compaction"}),
                json.dumps({"type": "system", "subtype": "compact_boundary"}),
                line("user", {"role": "user", "content": "Summary of the earlier conversation"}),
                line("user", {"role": "user", "content": [text("Fix the bug")]}),
                # One API message, one line per content block (thinking is not sent again).
                line("assistant", {"id": "msg_1", "role": "assistant", "content": [{"type": "thinking"}]}),
                line("assistant", {"id": "msg_1", "role": "assistant", "content": [text("Looking.")]}),
                line(
                    "assistant",
                    {"id": "msg_1", "role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Read"}]},
                ),
                line("user", {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1"}]}),
                line("assistant", {"id": "msg_x", "role": "assistant", "content": [text("sub")]}, isSidechain=True),
                line("assistant", {"id": "msg_s", "model": "<synthetic>", "content": [text("API Error")]}),
                line("assistant", {"id": "msg_2", "role": "assistant", "content": [text("Fixed.")]}),
                '{"type": "assistant", "message": {"id": "msg_3", "content": [',  # being written
            ]
        )
    )

    assert transcript_messages(path) == [
        {"role": "user", "content": [text("Summary of the earlier conversation"), text("Fix the bug")]},
        {"role": "assistant", "content": [text("Looking."), {"type": "tool_use", "id": "t1", "name": "Read"}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1"}]},
        {"role": "assistant", "content": [text("Fixed.")]},
    ]


def test_an_api_that_cannot_be_reached_is_a_502(start_bridge):
    from .conftest import free_port

    bridge = start_bridge(
        agent=f"{sys.executable} -m devstack.agent",
        env={"ANTHROPIC_API_KEY": "sk-devstack", "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{free_port()}"},
    )
    sid = bridge.new_session()["sessionId"]
    # A conversation in the transcript (the agent could not have made one without the API).
    transcript = bridge.claude_dir / "projects" / "-app" / f"{sid}.jsonl"
    transcript.parent.mkdir(parents=True)
    transcript.write_text(json.dumps({"type": "user", "message": {"role": "user", "content": "Hello"}}) + "\n")

    response = bridge.post("/session/count_tokens", {"sessionId": sid, "modelIds": [HAIKU]})

    assert (response.status_code, response.json()["code"]) == (502, "count_tokens_failed")
