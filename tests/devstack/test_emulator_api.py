"""The emulator's HTTP surface: shapes, streaming, tokenizers, errors, models."""

from __future__ import annotations

import json
import re

import anthropic
import httpx
import pytest

from .helpers import total_input, words

SONNET = "claude-sonnet-4-6"


def _count(client, model: str, text: str) -> int:
    messages = [{"role": "user", "content": text}]
    return client.messages.count_tokens(model=model, messages=messages).input_tokens


def test_tokenizer_families(client):
    text = words(10_000, "r")
    legacy = _count(client, SONNET, text)
    assert legacy == 10_003
    assert _count(client, "claude-haiku-4-5", text) == legacy
    assert _count(client, "claude-opus-4-6", text) == legacy
    # Ratios apply per block, rounded up: ceil(10003 * 1.35) and ceil(10003 * 1.30).
    for model in ("claude-opus-4-7", "claude-opus-4-8", "claude-opus-5", "claude-opus-5-5"):
        assert _count(client, model, text) == 13_505
    assert _count(client, "claude-haiku-5-5", text) == 13_004
    prose = "The quick brown fox, jumping over lazy dogs; tokenizers differ: Ünïcödé too! " * 200
    ratio = _count(client, "claude-opus-4-7", prose) / _count(client, SONNET, prose)
    assert 1.34 < ratio < 1.36
    assert _count(client, SONNET, prose) == _count(client, SONNET, prose)  # stable


def _rich_request() -> dict:
    return {
        "model": SONNET,
        "max_tokens": 100,
        "tools": [
            {
                "name": "read_file",
                "description": "Read a file from disk",
                "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
            }
        ],
        "system": [{"type": "text", "text": words(1200, "sys"), "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Read the config please"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "let me look", "signature": "sig"},
                    {"type": "tool_use", "id": "toolu_01", "name": "read_file", "input": {"path": "/app/config.json"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01", "content": '{"debug": true}'},
                    {"type": "text", "text": "what now?"},
                ],
            },
        ],
        "thinking": {"type": "enabled", "budget_tokens": 2000},
        "metadata": {"user_id": "u1"},
    }


def test_count_tokens_equals_usage_total(client):
    body = _rich_request()
    counted = client.messages.count_tokens(
        **{k: v for k, v in body.items() if k not in ("max_tokens", "metadata")}
    ).input_tokens
    usage = client.messages.create(**body).usage
    assert total_input(usage) == counted
    tools_only = (
        client.messages.count_tokens(
            model=SONNET, tools=body["tools"], messages=[{"role": "user", "content": "hi"}]
        ).input_tokens
        - 4
    )
    assert usage.cache_creation_input_tokens == tools_only + 1200  # tools precede the system breakpoint
    assert counted > 1200 + 1600  # the image is a fixed 1,600


def test_streaming_usage_equals_non_streaming(client, emulator):
    body = {**_rich_request(), "cache_control": {"type": "ephemeral"}}
    plain = client.messages.create(**body)
    emulator.reset()
    with client.messages.stream(**body) as stream:
        streamed = stream.get_final_message()
        request_id = stream.request_id
    assert streamed.usage.model_dump() == plain.usage.model_dump()
    assert streamed.content[0].text == plain.content[0].text
    assert re.fullmatch(r"req_01[1-9A-HJ-NP-Za-km-z]{22}", request_id)
    log = emulator.requests()
    assert log[-1]["requestId"] == request_id and log[-1]["stream"] is True


def test_sse_event_sequence(emulator):
    body = {
        "model": SONNET,
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": "hello stream"}],
    }
    with httpx.stream(
        "POST",
        emulator.url + "/v1/messages?beta=true",
        json=body,
        headers={
            "x-api-key": "k",
            "anthropic-version": "2023-06-01",
            "anthropic-beta": "fine-grained-tool-streaming-2025-05-14",
        },
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = response.read().decode()
    events = re.findall(r"^event: (\w+)$", text, flags=re.M)
    data = [json.loads(d) for d in re.findall(r"^data: (.*)$", text, flags=re.M)]
    assert events[0] == "message_start" and events[-2:] == ["message_delta", "message_stop"]
    assert [e for e in events if e != "ping"][:2] == ["message_start", "content_block_start"]
    assert "content_block_delta" in events and "content_block_stop" in events
    assert all(d["type"] == e for d, e in zip(data, events, strict=True))
    start = data[0]["message"]
    assert start["id"].startswith("msg_01") and start["content"] == [] and start["stop_reason"] is None
    assert set(start["usage"]) >= {
        "input_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "output_tokens",
        "cache_creation",
        "service_tier",
    }
    delta = data[events.index("message_delta")]
    assert delta["delta"]["stop_reason"] == "end_turn" and delta["usage"]["output_tokens"] > 1


def test_non_streaming_shape(emulator):
    response = httpx.post(
        emulator.url + "/v1/messages",
        headers={"authorization": "Bearer k"},
        json={
            "model": "claude-haiku-4-5-20251001",
            "max_tokens": 50,
            "messages": [{"role": "user", "content": "hello"}],
        },
    )
    assert response.status_code == 200
    assert response.headers["request-id"].startswith("req_01")
    body = response.json()
    assert body["type"] == "message" and body["role"] == "assistant"
    assert body["id"].startswith("msg_01") and len(body["id"]) == len("msg_01") + 22
    assert body["model"] == "claude-haiku-4-5-20251001"
    assert body["usage"] == {
        "input_tokens": 2 + 3,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": body["usage"]["output_tokens"],
        "service_tier": "standard",
        "inference_geo": "not_available",
    }


def test_replies_are_deterministic_and_respect_max_tokens(client):
    ask = {"model": SONNET, "messages": [{"role": "user", "content": "build me a todo app"}]}
    a = client.messages.create(max_tokens=200, **ask)
    b = client.messages.create(max_tokens=200, **ask)
    assert a.content[0].text == b.content[0].text and "build me a todo app" in a.content[0].text
    assert a.stop_reason == "end_turn"
    short = client.messages.create(max_tokens=3, **ask)
    assert short.stop_reason == "max_tokens" and short.usage.output_tokens <= 3


def test_forced_tool_choice_returns_tool_use(client):
    body = _rich_request()
    body["tool_choice"] = {"type": "tool", "name": "read_file"}
    body.pop("thinking")
    message = client.messages.create(**body)
    assert message.stop_reason == "tool_use"
    assert message.content[0].type == "tool_use" and message.content[0].input == {"path": "emulated"}


@pytest.mark.parametrize(
    "model",
    [
        "claude-haiku-4-5",
        "claude-haiku-5-5",
        "claude-sonnet-4-5",
        "claude-sonnet-4-6",
        "claude-sonnet-5",
        "claude-sonnet-5-5",
        "claude-opus-4-5",
        "claude-opus-4-6",
        "claude-opus-4-7",
        "claude-opus-4-8",
        "claude-opus-5",
        "claude-opus-5-5",
        "claude-fable-5-1",
        "claude-haiku-4-5-20251001",
        "claude-sonnet-4-6[1m]",
        "claude-opus-4-6-1m",
    ],
)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_models_accepted(client, model):
    messages = [{"role": "user", "content": "x"}]
    usage = client.messages.create(model=model, max_tokens=20, messages=messages).usage
    assert usage.input_tokens == (4 if re.search(r"haiku-4|sonnet|opus-4-[56]", model) else 6)


def test_models_list_and_get(client):
    ids = [m.id for m in client.models.list().data]
    assert len(ids) == 13
    assert {"claude-fable-5-1", "claude-opus-4-8", "claude-haiku-4-5"} <= set(ids)
    assert client.models.retrieve("claude-sonnet-4-6").display_name == "Claude Sonnet 4.6"


def test_dated_and_1m_variants_share_the_cache(client):
    system = [{"type": "text", "text": words(4200, "s"), "cache_control": {"type": "ephemeral"}}]
    msgs = [{"role": "user", "content": "x"}]
    assert (
        client.messages.create(
            model="claude-haiku-4-5", max_tokens=20, system=system, messages=msgs
        ).usage.cache_creation_input_tokens
        == 4200
    )
    assert (
        client.messages.create(
            model="claude-haiku-4-5-20251001", max_tokens=20, system=system, messages=msgs
        ).usage.cache_read_input_tokens
        == 4200
    )


def test_long_context_needs_the_beta(client):
    big = [{"role": "user", "content": words(210_000, "b")}]
    with pytest.raises(anthropic.BadRequestError, match="prompt is too long"):
        client.messages.count_tokens(model=SONNET, messages=big)
    counted = client.beta.messages.count_tokens(model=SONNET, messages=big, betas=["context-1m-2025-08-07"])
    assert counted.input_tokens == 210_003


def _post(emulator, path, body, headers=None):
    return httpx.post(emulator.url + path, json=body, headers={"x-api-key": "k", **(headers or {})})


def test_errors_are_shaped_like_anthropic(emulator, client):
    ok_msgs = [{"role": "user", "content": "x"}]
    unknown = _post(emulator, "/v1/messages", {"model": "claude-3-opus-nope", "max_tokens": 5, "messages": ok_msgs})
    assert unknown.status_code == 404
    assert unknown.json()["type"] == "error"
    assert unknown.json()["error"] == {"type": "not_found_error", "message": "model: claude-3-opus-nope"}
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model="gpt-4", max_tokens=5, messages=ok_msgs)

    no_auth = httpx.post(emulator.url + "/v1/messages", json={"model": SONNET})
    assert no_auth.status_code == 401 and no_auth.json()["error"]["type"] == "authentication_error"

    for body in (
        {"model": SONNET, "messages": ok_msgs},
        {"model": SONNET, "max_tokens": 5, "messages": []},
        {"model": SONNET, "max_tokens": 5, "messages": [{"role": "robot", "content": "x"}]},
        {"max_tokens": 5, "messages": ok_msgs},
    ):
        response = _post(emulator, "/v1/messages", body)
        assert response.status_code == 400, body
        assert response.json()["error"]["type"] == "invalid_request_error"
    bad_json = httpx.post(emulator.url + "/v1/messages", content=b"{nope", headers={"x-api-key": "k"})
    assert bad_json.status_code == 400

    lost = _post(emulator, "/api/hello", {})
    assert lost.status_code == 404 and lost.json()["error"]["type"] == "not_found_error"
    assert "POST /api/hello" in emulator.state()["unknownPaths"]
    assert httpx.head(emulator.url + "/").status_code == 404


def test_admin_clock(emulator):
    before = emulator.state()["now"]
    after = emulator.advance(90)["now"]
    assert 89 < after - before < 95
    emulator.reset()
    assert emulator.state()["offset"] == 0


def test_structured_output_is_json_for_the_schema(emulator):
    schema = {
        "type": "object",
        "properties": {"title": {"type": "string"}, "n": {"type": "integer"}},
        "required": ["title", "n"],
        "additionalProperties": False,
    }
    response = httpx.post(
        emulator.url + "/v1/messages?beta=true",
        headers={"x-api-key": "k"},
        json={
            "model": "claude-haiku-4-5",
            "max_tokens": 100,
            "messages": [{"role": "user", "content": "name it"}],
            "output_format": {"type": "json_schema", "schema": schema},
        },
    )
    assert json.loads(response.json()["content"][0]["text"]) == {"title": "emulated", "n": 1}
