"""A reply as the Messages API streams it (message_start, content blocks, message_delta,
message_stop), paced like a real model when the emulator runs with `--latency realistic`."""

from __future__ import annotations

import asyncio
import json

from . import latency, models
from .tokens import count_text


class Pace:
    """The delays of one reply: none, or a real model's (latency.py)."""

    def __init__(self, model_id: str, ratio_pct: int, first_token_s: float, realistic: bool) -> None:
        self.model_id, self.ratio_pct = model_id, ratio_pct
        self.first_token_s, self.realistic = first_token_s, realistic

    @classmethod
    def of(cls, *, latency_mode: str, spec: models.ModelSpec, usage) -> Pace:
        realistic = latency_mode == "realistic"
        first = (
            latency.first_token_seconds(
                spec.id, uncached_tokens=usage.input_tokens + usage.cache_creation, cached_tokens=usage.cache_read
            )
            if realistic
            else 0.0
        )
        return cls(spec.id, spec.ratio_pct, first, realistic)

    async def wait(self, seconds: float) -> None:
        if self.realistic:
            await asyncio.sleep(seconds)

    async def output(self, text: str) -> None:
        if self.realistic:
            await asyncio.sleep(latency.output_seconds(self.model_id, count_text(text, self.ratio_pct)))


def _sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _chunks(text: str, parts: int = 3) -> list[str]:
    words = text.split(" ")
    step = max(1, -(-len(words) // parts))
    chunks = [" ".join(words[i : i + step]) for i in range(0, len(words), step)]
    return [c if i == 0 else " " + c for i, c in enumerate(chunks)]


async def message_events(message: dict, pace: Pace):
    usage = message["usage"]
    start_usage = {**usage, "output_tokens": 1}
    await pace.wait(pace.first_token_s)
    yield _sse(
        "message_start",
        {
            "type": "message_start",
            "message": {**message, "content": [], "stop_reason": None, "stop_sequence": None, "usage": start_usage},
        },
    )
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            yield _sse(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
            )
            if index == 0:
                yield _sse("ping", {"type": "ping"})
            for n, piece in enumerate(_chunks(block["text"])):
                if n:  # the first piece is the first token's: its time is the first-token delay
                    await pace.output(piece)
                yield _sse(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}},
                )
        else:
            yield _sse(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": {**block, "input": {}}},
            )
            yield _sse(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": json.dumps(block["input"])},
                },
            )
        yield _sse("content_block_stop", {"type": "content_block_stop", "index": index})
    final_usage = {
        k: usage[k] for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")
    }
    yield _sse(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": final_usage,
        },
    )
    yield _sse("message_stop", {"type": "message_stop"})
