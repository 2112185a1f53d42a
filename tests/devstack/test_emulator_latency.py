"""`--latency realistic`: a real model's first-token delay and output speed; `none` answers at once."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from devstack.emulator import latency, server, streaming

from .helpers import words


def test_first_token_grows_with_uncached_prompt_and_is_shorter_on_cache_hits():
    short = latency.first_token_seconds("claude-sonnet-4-6", uncached_tokens=100, cached_tokens=0)
    cold = latency.first_token_seconds("claude-sonnet-4-6", uncached_tokens=187_000, cached_tokens=0)
    warm = latency.first_token_seconds("claude-sonnet-4-6", uncached_tokens=100, cached_tokens=187_000)
    assert short == pytest.approx(1.8, abs=0.01)
    assert 5.5 < cold < 6.5  # the cookbook's 187k-token uncached call
    assert cold / warm > 2  # "reduces latency by >2x"


def test_each_family_has_its_own_pace():
    def ttft(model):
        return latency.first_token_seconds(model, uncached_tokens=0, cached_tokens=0)

    assert ttft("claude-haiku-4-5") < ttft("claude-sonnet-4-5") < ttft("claude-opus-4-6")
    assert ttft("claude-opus-5-5") == ttft("claude-opus-4-1") == ttft("claude-fable-5-1")
    assert latency.output_seconds("claude-haiku-4-5", 112) == pytest.approx(1.0)
    assert latency.output_seconds("claude-sonnet-5", 63) == pytest.approx(1.0)
    assert latency.output_seconds("claude-opus-4-7", 45) == pytest.approx(1.0)


def _stream(mode: str, monkeypatch, text: str) -> list[float]:
    """The delays the emulator waits for while streaming one reply to `text`."""
    slept: list[float] = []

    async def sleep(seconds):
        slept.append(seconds)

    monkeypatch.setattr(streaming.asyncio, "sleep", sleep)
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 200,
        "stream": True,
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}]}
        ],
    }
    with TestClient(server.create_app(latency=mode)) as client:
        for _ in range(2):  # the second request reads the first one's cache
            response = client.post("/v1/messages", json=body, headers={"x-api-key": "k"})
            assert response.status_code == 200 and "message_stop" in response.text
            slept.append(-1.0)  # between the requests
    return slept


def test_realistic_streaming_waits_for_first_token_and_output(monkeypatch):
    slept = _stream("realistic", monkeypatch, words(20_000, "w"))
    cut = slept.index(-1.0)
    first, second = slept[:cut], slept[cut + 1 : -1]
    # First token after reading 20k uncached tokens; then the reply's later pieces at 63 tokens/s.
    assert first[0] == pytest.approx(1.8 + 20_000 / 45_000, abs=0.01)
    assert len(first) >= 2 and all(0 < s < 1 for s in first[1:])
    # The second request reads the prompt from the cache: a shorter wait for its first token.
    assert second[0] < first[0] - 0.3


def test_no_latency_by_default(monkeypatch):
    assert [s for s in _stream("none", monkeypatch, "hello there") if s != -1.0] == []
