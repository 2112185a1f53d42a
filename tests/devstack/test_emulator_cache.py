"""Prompt-cache accounting of the emulator, with exact numbers (DESIGN.md §6)."""

from __future__ import annotations

import anthropic
import pytest

from devstack.emulator.tokens import scale

from .helpers import MESSAGE_OVERHEAD, total_input, usage_dict, words

SONNET = "claude-sonnet-4-6"  # legacy tokenizer, minimum 1,024


def _sys_cc(n: int, tag: str = "sys", ttl: str | None = None) -> list[dict]:
    cc = {"type": "ephemeral"} if ttl is None else {"type": "ephemeral", "ttl": ttl}
    return [{"type": "text", "text": words(n, tag), "cache_control": cc}]


def _ask(client, *, model=SONNET, system=None, messages=None, auto=None, tools=None, **kw):
    params = {"model": model, "max_tokens": 64, "messages": messages or [{"role": "user", "content": "hi"}]}
    if system is not None:
        params["system"] = system
    if auto is not None:
        params["cache_control"] = auto
    if tools is not None:
        params["tools"] = tools
    return client.messages.create(**params, **kw)


def test_cold_write_then_warm_read(client):
    first = _ask(client, system=_sys_cc(2000))
    assert usage_dict(first.usage) == {"input": 1 + MESSAGE_OVERHEAD, "write": 2000, "read": 0, "w5m": 2000, "w1h": 0}
    second = _ask(client, system=_sys_cc(2000))
    assert usage_dict(second.usage) == {"input": 4, "write": 0, "read": 2000, "w5m": 0, "w1h": 0}


def test_write_replaces_plain_input_charge(client):
    """A cold prefix is billed once, as a write: total input equals the prompt's size."""
    params = {"system": _sys_cc(1500), "messages": [{"role": "user", "content": words(10, "q")}]}
    counted = client.messages.count_tokens(model=SONNET, **params).input_tokens
    usage = _ask(client, **params).usage
    assert counted == 1500 + 10 + MESSAGE_OVERHEAD
    assert total_input(usage) == counted
    assert (usage.input_tokens, usage.cache_creation_input_tokens) == (13, 1500)


def test_chat_loop_reads_previous_read_plus_write(client):
    messages: list[dict] = []
    system = words(1500, "sys")
    history = []
    for turn in range(5):
        messages.append({"role": "user", "content": words(20 + turn, f"u{turn}")})
        reply = _ask(client, system=system, messages=messages, auto={"type": "ephemeral"})
        history.append(reply.usage)
        messages.append({"role": "assistant", "content": reply.content[0].text})
        assert reply.usage.input_tokens == 0  # the breakpoint sits on the last block
    assert history[0].cache_read_input_tokens == 0
    assert history[0].cache_creation_input_tokens == 1500 + 20 + MESSAGE_OVERHEAD
    for prev, cur in zip(history, history[1:], strict=False):
        assert cur.cache_read_input_tokens == prev.cache_read_input_tokens + prev.cache_creation_input_tokens
    # The tail written each turn: the previous reply plus the new user message.
    assistant_tokens = client.messages.count_tokens(
        model=SONNET, messages=[{"role": "user", "content": messages[1]["content"]}]
    ).input_tokens
    assert history[1].cache_creation_input_tokens == assistant_tokens + (21 + MESSAGE_OVERHEAD)


def test_model_switch_is_cold_and_switch_back_reads_earlier_prefix(client, emulator):
    system = words(1500, "sys")
    messages = [{"role": "user", "content": words(30, "u0")}]
    sonnet = _ask(client, system=system, messages=messages, auto={"type": "ephemeral"})
    sonnet_cached = sonnet.usage.cache_creation_input_tokens
    messages += [{"role": "assistant", "content": sonnet.content[0].text}, {"role": "user", "content": words(30, "u1")}]

    opus_count = client.messages.count_tokens(model="claude-opus-4-8", system=system, messages=messages).input_tokens
    opus = _ask(client, model="claude-opus-4-8", system=system, messages=messages, auto={"type": "ephemeral"})
    assert usage_dict(opus.usage) == {"input": 0, "write": opus_count, "read": 0, "w5m": opus_count, "w1h": 0}
    messages += [{"role": "assistant", "content": opus.content[0].text}, {"role": "user", "content": words(30, "u2")}]

    emulator.advance(120)  # within the 5 minutes of the first Sonnet turn
    back_count = client.messages.count_tokens(model=SONNET, system=system, messages=messages).input_tokens
    back = _ask(client, system=system, messages=messages, auto={"type": "ephemeral"})
    assert back.usage.cache_read_input_tokens == sonnet_cached
    assert back.usage.cache_creation_input_tokens == back_count - sonnet_cached
    assert back.usage.input_tokens == 0


@pytest.mark.parametrize(("advance", "hit"), [(299, True), (300, False), (301, False)])
def test_ttl_expiry_edges(client, emulator, advance, hit):
    _ask(client, system=_sys_cc(1200))
    emulator.advance(advance)
    usage = _ask(client, system=_sys_cc(1200)).usage
    if hit:
        assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (1200, 0)
    else:
        assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (0, 1200)


def test_read_refreshes_ttl(client, emulator):
    _ask(client, system=_sys_cc(1200))
    emulator.advance(200)
    assert _ask(client, system=_sys_cc(1200)).usage.cache_read_input_tokens == 1200
    emulator.advance(200)  # 400 s after the write, 200 s after the refreshing read
    assert _ask(client, system=_sys_cc(1200)).usage.cache_read_input_tokens == 1200
    emulator.advance(301)
    assert _ask(client, system=_sys_cc(1200)).usage.cache_read_input_tokens == 0


def _tool(n: int, ttl: str | None = "1h") -> dict:
    tool = {"name": "lookup", "description": words(n, "desc"), "input_schema": {"type": "object", "properties": {}}}
    if ttl:
        tool["cache_control"] = {"type": "ephemeral", "ttl": ttl}
    return tool


def test_one_hour_and_five_minute_split(client, emulator):
    tool = _tool(1100)
    tool_tokens = (
        client.messages.count_tokens(
            model=SONNET, tools=[tool], messages=[{"role": "user", "content": "hi"}]
        ).input_tokens
        - 4
    )
    first = _ask(client, tools=[tool], system=_sys_cc(500, ttl="5m"))
    assert usage_dict(first.usage) == {
        "input": 4,
        "write": tool_tokens + 500,
        "read": 0,
        "w5m": 500,
        "w1h": tool_tokens,
    }
    emulator.advance(301)  # the 5-minute entry is gone, the 1-hour one is not
    second = _ask(client, tools=[tool], system=_sys_cc(500, ttl="5m"))
    assert usage_dict(second.usage) == {"input": 4, "write": 500, "read": tool_tokens, "w5m": 500, "w1h": 0}
    emulator.advance(3600)
    third = _ask(client, tools=[tool], system=_sys_cc(500, ttl="5m"))
    assert third.usage.cache_read_input_tokens == 0


def test_one_hour_after_five_minutes_is_rejected(client):
    with pytest.raises(anthropic.BadRequestError) as err:
        _ask(client, tools=[_tool(10, ttl="5m")], system=_sys_cc(10, ttl="1h"))
    assert "ttl='1h'" in err.value.body["error"]["message"]


@pytest.mark.parametrize(
    ("model", "minimum", "ratio_pct"),
    [
        ("claude-haiku-4-5", 4096, 100),
        ("claude-sonnet-4-6", 1024, 100),
        ("claude-sonnet-5-5", 512, 100),
        ("claude-opus-4-6", 4096, 100),
        ("claude-opus-4-7", 2048, 135),
        ("claude-opus-5", 512, 135),
        ("claude-haiku-5-5", 2048, 130),
    ],
)
def test_minimum_cacheable_prefix(client, model, minimum, ratio_pct):
    # The fewest one-token words whose count in this model's tokenizer reaches the minimum.
    n = (minimum - 1) * 100 // ratio_pct + 1
    assert scale(n - 1, ratio_pct) < minimum <= scale(n, ratio_pct)
    below = _ask(client, model=model, system=_sys_cc(n - 1, "s")).usage
    assert (below.cache_creation_input_tokens, below.cache_read_input_tokens) == (0, 0)
    assert below.input_tokens == scale(n - 1, ratio_pct) + scale(4, ratio_pct)
    at = _ask(client, model=model, system=_sys_cc(n, "s")).usage
    assert at.cache_creation_input_tokens == scale(n, ratio_pct)


def test_minimum_exact_on_sonnet(client):
    below = _ask(client, system=_sys_cc(1023)).usage
    assert usage_dict(below) == {"input": 1023 + 4, "write": 0, "read": 0, "w5m": 0, "w1h": 0}
    again = _ask(client, system=_sys_cc(1023)).usage  # nothing was stored, nothing to read
    assert again.cache_read_input_tokens == 0
    at = _ask(client, system=_sys_cc(1024)).usage
    assert usage_dict(at) == {"input": 4, "write": 1024, "read": 0, "w5m": 1024, "w1h": 0}


def test_api_keys_are_isolated(client, emulator):
    other = anthropic.Anthropic(base_url=emulator.url, api_key="key-b", max_retries=0)
    assert _ask(client, system=_sys_cc(1200)).usage.cache_creation_input_tokens == 1200
    assert _ask(other, system=_sys_cc(1200)).usage.cache_creation_input_tokens == 1200
    assert _ask(client, system=_sys_cc(1200)).usage.cache_read_input_tokens == 1200
    bearer = anthropic.Anthropic(base_url=emulator.url, auth_token="key-b", max_retries=0)
    assert _ask(bearer, system=_sys_cc(1200)).usage.cache_read_input_tokens == 1200


def test_multiple_breakpoints_split_the_write(client):
    messages = [{"role": "user", "content": words(700, "q")}]
    usage = _ask(client, system=_sys_cc(1100), messages=messages, auto={"type": "ephemeral"}).usage
    assert usage_dict(usage) == {"input": 0, "write": 1100 + 703, "read": 0, "w5m": 1803, "w1h": 0}
    messages2 = [{"role": "user", "content": words(700, "q2")}]
    usage2 = _ask(client, system=_sys_cc(1100), messages=messages2, auto={"type": "ephemeral"}).usage
    assert usage_dict(usage2) == {"input": 0, "write": 703, "read": 1100, "w5m": 703, "w1h": 0}


def _conversation(distance: int) -> list[dict]:
    """A cached first message (block 0), then blocks up to index `distance`."""
    messages = [{"role": "user", "content": words(1100, "u")}]
    if distance:
        messages.append({"role": "assistant", "content": "ok"})
        messages.append(
            {"role": "user", "content": [{"type": "text", "text": f"b{i}"} for i in range(distance - 1)] or "end"}
        )
    return messages


@pytest.mark.parametrize(("distance", "hit"), [(2, True), (20, True), (21, False), (30, False)])
def test_lookback_window_of_twenty_blocks(client, distance, hit):
    _ask(client, messages=_conversation(0), auto={"type": "ephemeral"})  # entry at block 0
    later = _conversation(distance)
    usage = _ask(client, messages=later, auto={"type": "ephemeral"}).usage
    assert usage.cache_read_input_tokens == (1103 if hit else 0)
    assert total_input(usage) == client.messages.count_tokens(model=SONNET, messages=later).input_tokens


def test_more_than_four_breakpoints_is_an_error(client):
    system = [{"type": "text", "text": f"b{i}", "cache_control": {"type": "ephemeral"}} for i in range(5)]
    with pytest.raises(anthropic.BadRequestError) as err:
        _ask(client, system=system)
    assert err.value.body["error"] == {
        "type": "invalid_request_error",
        "message": "A maximum of 4 blocks with cache_control may be provided. Found 5.",
    }
    with pytest.raises(anthropic.BadRequestError):
        _ask(client, system=system[:4], auto={"type": "ephemeral"})


def test_prefix_change_misses(client):
    _ask(client, system=_sys_cc(1200, "aaa"))
    assert _ask(client, system=_sys_cc(1200, "bbb")).usage.cache_read_input_tokens == 0
