"""Cache diagnostics (`diagnostics.previous_message_id` -> `cache_miss_reason`)."""

from __future__ import annotations

import anthropic

from .helpers import words

SYSTEM = words(1500, "sys")
TOOLS = [{"name": "ls", "description": "list files", "input_schema": {"type": "object", "properties": {}}}]


def _turn(client, messages, previous, *, model="claude-sonnet-4-6", system=SYSTEM, tools=TOOLS, **kw):
    return client.messages.create(
        model=model,
        max_tokens=64,
        system=system,
        tools=tools,
        messages=messages,
        cache_control={"type": "ephemeral"},
        diagnostics={"previous_message_id": previous},
        **kw,
    )


def _reason(message) -> dict | None:
    return message.diagnostics.cache_miss_reason.model_dump() if message.diagnostics else None


def test_diagnostics_reasons(client, emulator):
    messages = [{"role": "user", "content": "start the app"}]
    first = _turn(client, messages, None)
    assert first.diagnostics is None
    messages += [{"role": "assistant", "content": first.content[0].text}, {"role": "user", "content": "more"}]
    second = _turn(client, messages, first.id)
    assert second.diagnostics is None and second.usage.cache_read_input_tokens > 1500
    left = second.usage.cache_read_input_tokens + second.usage.cache_creation_input_tokens

    switched = _turn(client, messages, second.id, model="claude-opus-4-8")
    assert _reason(switched) == {"type": "model_changed", "cache_missed_input_tokens": left}
    assert _reason(_turn(client, messages, second.id, system=words(1500, "new"))) == {
        "type": "system_changed",
        "cache_missed_input_tokens": left,
    }
    assert _reason(_turn(client, messages, second.id, tools=[])) == {
        "type": "tools_changed",
        "cache_missed_input_tokens": left,
    }
    edited = [{"role": "user", "content": "start the app, edited"}, *messages[1:]]
    assert _reason(_turn(client, edited, second.id)) == {"type": "messages_changed", "cache_missed_input_tokens": left}
    assert _reason(_turn(client, messages, second.id, thinking={"type": "enabled", "budget_tokens": 1024})) == {
        "type": "unavailable"
    }
    assert _reason(_turn(client, messages, "msg_01unknown")) == {"type": "previous_message_not_found"}
    other_key = anthropic.Anthropic(base_url=emulator.url, api_key="key-other", max_retries=0)
    assert _reason(_turn(other_key, messages, second.id)) == {"type": "previous_message_not_found"}


def test_diagnostics_absent_unless_asked_and_in_streams(client, emulator):
    plain = client.messages.create(
        model="claude-sonnet-4-6", max_tokens=32, messages=[{"role": "user", "content": "hi"}]
    )
    assert plain.diagnostics is None and "diagnostics" not in plain.model_dump(exclude_unset=True)
    with client.messages.stream(
        model="claude-opus-4-8",
        max_tokens=32,
        messages=[{"role": "user", "content": "hi"}],
        diagnostics={"previous_message_id": plain.id},
    ) as stream:
        final = stream.get_final_message()
    assert _reason(final) == {"type": "model_changed", "cache_missed_input_tokens": 0}
    assert emulator.requests()[-1]["diagnostics"]["cache_miss_reason"]["type"] == "model_changed"
