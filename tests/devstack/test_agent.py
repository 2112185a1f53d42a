"""The reference ACP agent against the emulator, through the real `acp` client SDK."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from acp import RequestError, text_block

from devstack.agent.transcript import transcript_path

from .acp_harness import acp_agent, raw_request
from .helpers import words

ROOT = Path(__file__).resolve().parents[2]
MODELS = ["default", "haiku", "sonnet", "sonnet[1m]", "opus", "opus[1m]"]


def _env(emulator, config_dir: Path, **extra) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "ANTHROPIC_BASE_URL": emulator.url,
        "ANTHROPIC_API_KEY": "agent-key",
        "CLAUDE_CONFIG_DIR": str(config_dir),
        **extra,
    }


def _run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_session_models_errors_and_one_hour_ttl(emulator, tmp_path):
    env = _env(emulator, tmp_path, DEVSTACK_CACHE_TTL="1h")

    async def scenario():
        async with acp_agent([sys.executable, "-m", "devstack.agent"], env=env, cwd=str(tmp_path)) as (
            conn,
            _rec,
            init,
        ):
            assert init.protocol_version == 1 and init.agent_info.name == "devstack-reference-agent"
            new = await conn.new_session(cwd=str(tmp_path))
            (option,) = [o.model_dump(by_alias=True, exclude_none=True) for o in new.config_options]
            assert option["id"] == "model" and option["category"] == "model"
            assert option["currentValue"] == "default"
            assert [o["value"] for o in option["options"]] == MODELS

            with pytest.raises(RequestError) as legacy:
                await raw_request(conn, "session/set_model", {"sessionId": new.session_id, "modelId": "haiku"})
            assert legacy.value.code == -32601
            with pytest.raises(RequestError) as unknown_model:
                await conn.set_config_option(config_id="model", session_id=new.session_id, value="gpt-5")
            assert unknown_model.value.code == -32602
            with pytest.raises(RequestError) as unknown_session:
                await conn.set_config_option(config_id="model", session_id="nope", value="haiku")
            assert unknown_session.value.code == -32002
            with pytest.raises(RequestError) as unknown_prompt:
                await conn.prompt(session_id="nope", prompt=[text_block("hi")])
            assert unknown_prompt.value.code == -32002
            for value in MODELS:
                switched = await conn.set_config_option(config_id="model", session_id=new.session_id, value=value)
                assert switched.config_options[0].current_value == value
            await conn.set_config_option(config_id="model", session_id=new.session_id, value="sonnet")
            await conn.prompt(session_id=new.session_id, prompt=[text_block(words(1500, "long"))])

    _run(scenario())
    (request,) = emulator.requests()
    assert request["model"] == "claude-sonnet-4-6"
    assert request["usage"]["cache_creation"]["ephemeral_1h_input_tokens"] > 1500
    assert request["usage"]["cache_creation"]["ephemeral_5m_input_tokens"] == 0


def test_chat_loop_usage_transcript_and_switch(emulator, tmp_path):
    workdir = tmp_path / "app"
    workdir.mkdir()

    async def scenario():
        async with acp_agent(
            [sys.executable, "-m", "devstack.agent"], env=_env(emulator, tmp_path / "cfg"), cwd=str(workdir)
        ) as (conn, rec, _init):
            sid = (await conn.new_session(cwd=str(workdir))).session_id
            turns = []
            for i, text in enumerate([words(1200, "spec"), "add a button", "make it blue"]):
                response = await conn.prompt(session_id=sid, prompt=[text_block(text)])
                assert response.stop_reason == "end_turn"
                turns.append(response.usage)
                assert len(rec.of_kind(sid, "usage_update")) == i + 1
            await conn.set_config_option(config_id="model", session_id=sid, value="sonnet[1m]")
            turns.append((await conn.prompt(session_id=sid, prompt=[text_block("now sonnet 1m")])).usage)
            await conn.set_config_option(config_id="model", session_id=sid, value="haiku")
            turns.append((await conn.prompt(session_id=sid, prompt=[text_block("now haiku")])).usage)
            return sid, turns, rec

    sid, turns, rec = _run(scenario())
    assert "make it blue" in rec.text(sid)
    first, second, third, same_model_1m, haiku = turns
    assert (first.cached_read_tokens, first.input_tokens) == (0, 0)
    assert first.cached_write_tokens > 1200
    assert second.cached_read_tokens == first.cached_write_tokens
    assert third.cached_read_tokens == second.cached_read_tokens + second.cached_write_tokens
    # sonnet[1m] is the same API model: the cache stays warm.
    assert same_model_1m.cached_read_tokens == third.cached_read_tokens + third.cached_write_tokens
    # Haiku: a cold model, and below its 4,096 minimum: all plain input.
    assert (haiku.cached_read_tokens, haiku.cached_write_tokens) == (0, 0)
    assert haiku.input_tokens > 1200
    for usage in turns:
        assert usage.total_tokens == (
            usage.input_tokens + usage.output_tokens + usage.cached_read_tokens + usage.cached_write_tokens
        )

    log = emulator.requests()
    assert [r["model"] for r in log] == ["claude-sonnet-4-6"] * 4 + ["claude-haiku-4-5"]
    assert [r["longContext"] for r in log] == [False, False, False, True, False]
    assert "context-1m-2025-08-07" in log[3]["betas"]
    path = transcript_path(str(workdir), sid, tmp_path / "cfg")
    assert path.parent.name == str(workdir).replace("/", "-").replace("_", "-")
    written = [json.loads(line) for line in path.read_text().splitlines()]
    # Like Claude Code's: the user's prompt, then the request's reply, turn after turn.
    assert [line["type"] for line in written] == ["user", "assistant"] * len(log)
    assert all(line["message"] == {"role": "user", "content": line["message"]["content"]} for line in written[::2])
    lines = written[1::2]
    assert [line["requestId"] for line in lines] == [r["requestId"] for r in log]
    assert [line["message"]["id"] for line in lines] == [r["messageId"] for r in log]
    assert [line["message"]["usage"] for line in lines] == [r["usage"] for r in log]
    assert all(line["type"] == "assistant" and line["sessionId"] == sid for line in lines)
