"""Each real claude-agent-acp, straight over ACP (no bridge): session, every model, a prompt."""

from __future__ import annotations

import asyncio
import time

import pytest
from acp import RequestError, text_block

from tests.devstack.acp_harness import acp_agent, raw_request

from .conftest import AGENTS, claude_code_env

pytestmark = pytest.mark.node


def family_matches(model_value: str, api_model: str) -> bool:
    for family in ("haiku", "sonnet", "opus", "fable"):
        if family in model_value:
            return family in api_model
    return True  # "default": whatever the agent chose


@pytest.mark.parametrize("agent", AGENTS, ids=lambda a: a.key)
def test_real_agent_over_acp(agent, node_modules, emulator, tmp_path):
    workdir = tmp_path / "app"
    workdir.mkdir()
    env = claude_code_env(emulator.url, tmp_path)
    started = time.monotonic()

    async def scenario():
        async with acp_agent(
            ["node", str(agent.entry)], env=env, cwd=str(workdir), stderr_path=str(tmp_path / "agent.stderr")
        ) as (conn, rec, init):
            assert init.agent_info.name == agent.package
            assert init.agent_info.version == agent.pinned
            new = await raw_request(conn, "session/new", {"cwd": str(workdir), "mcpServers": []})
            sid = new["sessionId"]
            model_option = next((o for o in new.get("configOptions") or [] if o.get("category") == "model"), None)
            assert model_option is not None, "both packages offer the model as a config option"
            values = [o["value"] for o in model_option["options"]]
            if agent.legacy_set_model:
                # The legacy shape is there too, with the same models.
                assert [m["modelId"] for m in new["models"]["availableModels"]] == values
            else:
                with pytest.raises(RequestError) as legacy:
                    await raw_request(conn, "session/set_model", {"sessionId": sid, "modelId": values[0]})
                assert legacy.value.code == -32601
            results = []
            for value in values:
                if agent.legacy_set_model:  # switch the legacy way where it exists
                    await raw_request(conn, "session/set_model", {"sessionId": sid, "modelId": value})
                else:
                    await conn.set_config_option(config_id="model", session_id=sid, value=value)
                before = len(emulator.requests())
                response = await conn.prompt(session_id=sid, prompt=[text_block(f"Say hi as {value}")])
                results.append((value, response, emulator.requests()[before:]))
            return sid, values, results, rec

    sid, values, results, rec = asyncio.run(asyncio.wait_for(scenario(), 240))
    print(f"{agent.key}: {len(values)} models {values} in {time.monotonic() - started:.1f}s")
    assert len(values) >= 4
    for value, response, requests in results:
        assert response.stop_reason == "end_turn", value
        assert response.usage is not None and response.usage.total_tokens > 0, value
        assert requests, f"no API request after switching to {value}"
        # Claude Code may send side requests (titles, summaries) in the same turn: the turn's
        # usage is that of the request that answered the prompt.
        matching = [
            r
            for r in requests
            if (
                r["usage"]["output_tokens"],
                r["usage"]["cache_read_input_tokens"],
                r["usage"]["cache_creation_input_tokens"],
                r["usage"]["input_tokens"],
            )
            == (
                response.usage.output_tokens,
                response.usage.cached_read_tokens,
                response.usage.cached_write_tokens,
                response.usage.input_tokens,
            )
        ]
        assert matching, (value, response.usage, [r["usage"] for r in requests])
        main = matching[-1]
        assert family_matches(value, main["model"]), (value, main["model"])
        if value.endswith("[1m]"):
            assert main["longContext"], (value, main)
        u = main["usage"]
        print(
            f"  {value:12} -> {main['model']:18} read={u['cache_read_input_tokens']:6} "
            f"write={u['cache_creation_input_tokens']:6} input={u['input_tokens']}"
        )
    assert "Say hi as" in rec.text(sid)
    assert rec.of_kind(sid, "usage_update")
