"""A bridge for bench/streams.py: it answers docs/bridge-contract.md for any number of sessions and
streams each turn as the prompt asks, with no agent behind it. Plain asyncio, so that it spends
as little as it can of the CPUs the server is measured on.

    python -m bench.stream_double --port N --token T

The prompt "<events> <interval>" streams <events> `update` events, the first at once and then
one every <interval> seconds (0: as fast as the reader takes them), then `done`; a cancel of
the session ends its turn with stopReason "cancelled".
"""

import argparse
import asyncio
import contextlib
import itertools
import json
import resource

_ids = itertools.count()
_TEXT = "Some words the agent streams, about as long as a real chunk of its answer. "


class Double:
    def __init__(self, token: str) -> None:
        self.auth = f"Bearer {token}"
        self.running: dict[str, asyncio.Event] = {}  # session -> its turn's cancel
        self.turns: dict[str, int] = {}  # session -> the number of its last turn

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                method, path, _ = head[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:])}
                raw = await reader.readexactly(int(headers.get("content-length") or 0))
                body = json.loads(raw) if raw else {}
                if headers.get("authorization") != self.auth:
                    await _answer(writer, 401, {"code": "unauthorized", "message": "bad token", "extra": {}})
                elif path == "/session/prompt":
                    await self.turn(writer, body.get("sessionId"), str(body.get("prompt") or ""))
                    return
                else:
                    await _answer(writer, 200, self.call(method, path, body))
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    def call(self, method: str, path: str, body: dict) -> dict:
        if method == "GET" and path == "/health":
            return {"ok": True, "agent": {"name": "stream-double", "version": "1"}, "protocolVersion": 1}
        if path == "/session/new":
            model = body.get("modelId") or "haiku"
            models = [{"modelId": m, "name": m, "description": ""} for m in ("haiku", "sonnet", "opus")]
            return {"sessionId": f"acp-{next(_ids)}", "modelId": model, "availableModels": models}
        if path == "/session/set_model":
            return {"ok": True, "sessionId": body.get("sessionId"), "modelId": body.get("modelId")}
        if path == "/session/cancel":
            cancel = self.running.get(body.get("sessionId"))
            if cancel is not None:
                cancel.set()
            return {"ok": True}
        return {"ok": False}

    async def turn(self, writer: asyncio.StreamWriter, session_id: str, prompt: str) -> None:
        events, interval = (prompt.split() + ["1", "0"])[:2]
        cancel = self.running[session_id] = asyncio.Event()
        self.turns[session_id] = turn = self.turns.get(session_id, 0) + 1
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
        chunk = {"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": _TEXT}}
        frame = f"event: update\ndata: {json.dumps({'sessionId': session_id, 'update': chunk, 'turn': turn})}\n\n"
        stop = "end_turn"
        try:
            for n in range(int(events)):
                if n and float(interval):
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(cancel.wait(), float(interval))
                if cancel.is_set():
                    stop = "cancelled"
                    break
                writer.write(frame.encode())
                await writer.drain()
            usage = {"inputTokens": 3, "outputTokens": 60, "cachedReadTokens": 20000, "cachedWriteTokens": 300}
            done = {"stopReason": stop, "usage": {**usage, "totalTokens": 20363}, "turn": turn}
            writer.write(f"event: done\ndata: {json.dumps(done)}\n\n".encode())
            await writer.drain()
        finally:
            if self.running.get(session_id) is cancel:
                del self.running[session_id]


async def _answer(writer: asyncio.StreamWriter, status: int, body: dict) -> None:
    raw = json.dumps(body).encode()
    head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(raw)}\r\n\r\n"
    writer.write(head.encode() + raw)
    await writer.drain()


async def main(port: int, token: str) -> None:
    server = await asyncio.start_server(Double(token).serve, "127.0.0.1", port, backlog=4096)
    print(f"listening on port {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(main(args.port, args.token))
