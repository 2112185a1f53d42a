"""A small scripted ACP agent over stdio, built on the ACP SDK's JSON-RPC connection.

It is a real agent process for the bridge to drive; the prompt text picks its behaviour:

  "crash"              send one update, then die mid-turn
  "slow <seconds>"     answer after a delay
  "stderr"             write a secret to stderr, answer normally
  "transcript"         write Claude Code style transcript lines (repeated requestIds)
  "late-transcript S"  the same lines, timed now, but written to the file S seconds after the turn
  "ratelimit"          surface a rate-limit event the way claude-agent-acp does
  "permission"         ask the client for permission and echo the chosen option
  "write <path>"       ask the client to write a file; "read <path>": to read one
  "model [<value>]"    say the session's model; with a value, switch to it on its own first
                       and tell the client with a `config_option_update`
  "odd-usage"          answer with usage counts that are not all numbers
  anything else        echo it back in one agent_message_chunk

Flags: --style config|legacy (how the model is switched), --slow-set-model SECONDS,
--name NAME.
"""

import argparse
import asyncio
import json
import os
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from acp import RequestError
from acp.connection import Connection
from acp.stdio import stdio_streams

MODELS = [
    {"modelId": "default", "name": "Default", "description": "Recommended"},
    {"modelId": "haiku", "name": "Haiku", "description": "Fastest"},
    {"modelId": "sonnet", "name": "Sonnet", "description": "Balanced"},
    {"modelId": "opus", "name": "Opus", "description": "Smartest"},
]
API_MODEL = {
    "default": "claude-sonnet-4-6",
    "haiku": "claude-haiku-4-5",
    "sonnet": "claude-sonnet-4-6",
    "opus": "claude-opus-4-7",
}
SECRET = "AGENT-STDERR-SECRET-do-not-leak"


class ScriptedAgent:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sessions: dict[str, dict] = {}
        self.conn: Connection | None = None

    def _config_options(self, current: str) -> list[dict]:
        return [
            {
                "id": "model",
                "name": "Model",
                "category": "model",
                "type": "select",
                "currentValue": current,
                "options": [
                    {"value": m["modelId"], "name": m["name"], "description": m["description"]} for m in MODELS
                ],
            }
        ]

    def _session(self, params: dict) -> dict:
        session = self.sessions.get(params.get("sessionId"))
        if session is None:
            raise RequestError.resource_not_found(str(params.get("sessionId")))
        return session

    async def handle(self, method: str, params, is_notification: bool):
        params = params or {}
        if method == "initialize":
            return {
                "protocolVersion": 1,
                "agentCapabilities": {"loadSession": False},
                "agentInfo": {"name": self.args.name, "version": "1.0.0"},
                "authMethods": [],
            }
        if method == "session/new":
            sid = f"sess-{uuid.uuid4().hex[:12]}"
            self.sessions[sid] = {"model": "default", "cwd": params.get("cwd"), "turns": 0}
            result = {"sessionId": sid}
            if self.args.style == "config":
                result["configOptions"] = self._config_options("default")
            else:
                result["models"] = {"availableModels": MODELS, "currentModelId": "default"}
            return result
        if method == "session/set_config_option":
            if self.args.style != "config":
                raise RequestError.method_not_found(method)
            return await self._switch(self._session(params), params.get("value"), config=True)
        if method == "session/set_model":
            if self.args.style != "legacy":
                raise RequestError.method_not_found(method)
            return await self._switch(self._session(params), params.get("modelId"), config=False)
        if method == "session/prompt":
            return await self._prompt(params)
        if method == "session/cancel":
            session = self.sessions.get(params.get("sessionId"))
            if session is not None:
                session["cancelled"] = True
            return None
        if is_notification:
            return None
        raise RequestError.method_not_found(method)

    async def _switch(self, session: dict, value, *, config: bool) -> dict:
        if self.args.slow_set_model:
            await asyncio.sleep(self.args.slow_set_model)
        if value not in API_MODEL:
            raise RequestError.invalid_params({"model": f"unknown model {value}"})
        session["model"] = value
        return {"configOptions": self._config_options(value)} if config else {}

    async def _update(self, sid: str, update: dict) -> None:
        assert self.conn is not None
        await self.conn.send_notification("session/update", {"sessionId": sid, "update": update})

    async def _say(self, sid: str, text: str) -> None:
        await self._update(sid, {"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": text}})

    async def _prompt(self, params: dict) -> dict:
        session = self._session(params)
        sid = params["sessionId"]
        session["turns"] += 1
        session["cancelled"] = False
        text = " ".join(b.get("text", "") for b in params.get("prompt") or [] if isinstance(b, dict)).strip()
        command, _, arg = text.partition(" ")
        usage = {
            "inputTokens": 10,
            "outputTokens": 5,
            "cachedReadTokens": 100 * session["turns"],
            "cachedWriteTokens": 50,
            "totalTokens": 165 + 100 * session["turns"],
        }
        if command == "crash":
            await self._say(sid, "about to crash")
            await asyncio.sleep(0.05)
            os._exit(3)
        if command == "slow":
            await self._say(sid, "thinking slowly")
            for _ in range(int(float(arg or 1) / 0.05)):
                await asyncio.sleep(0.05)
                if session.get("cancelled"):
                    return {"stopReason": "cancelled", "usage": usage}
        elif command == "stderr":
            print(f"{SECRET} token=hunter2", file=sys.stderr, flush=True)
            await self._say(sid, "wrote to stderr")
        elif command == "transcript":
            self._write_transcript(sid, session)
            await self._say(sid, "transcript written")
        elif command == "late-transcript":
            lines = self._transcript_lines(sid, session, datetime.now(UTC))
            asyncio.get_running_loop().call_later(float(arg), self._append_transcript, sid, lines)
            await self._say(sid, "transcript comes later")
        elif command == "ratelimit":
            info = {
                "status": "allowed_warning",
                "resetsAt": 1763805600,
                "rateLimitType": "seven_day",
                "utilization": 0.42,
            }
            await self._update(
                sid,
                {
                    "sessionUpdate": "usage_update",
                    "used": 1000,
                    "size": 200000,
                    "_meta": {"_claude/rateLimit": info},
                },
            )
            await self._say(sid, "rate limited")
        elif command == "permission":
            assert self.conn is not None
            answer = await self.conn.send_request(
                "session/request_permission",
                {
                    "sessionId": sid,
                    "toolCall": {"toolCallId": "t1", "title": "Edit file"},
                    "options": [
                        {"optionId": "yes-always", "name": "Always", "kind": "allow_always"},
                        {"optionId": "yes", "name": "Allow", "kind": "allow_once"},
                        {"optionId": "no", "name": "Reject", "kind": "reject_once"},
                    ],
                },
            )
            await self._say(sid, json.dumps(answer))
        elif command == "model":
            if arg:
                session["model"] = arg
                await self._update(
                    sid, {"sessionUpdate": "config_option_update", "configOptions": self._config_options(arg)}
                )
            await self._say(sid, f"model: {session['model']}")
        elif command in ("write", "read"):
            assert self.conn is not None
            call = {"sessionId": sid, "path": arg}
            if command == "write":
                call["content"] = "written by the agent\n"
            try:
                answer = await self.conn.send_request(f"fs/{command}_text_file", call)
                await self._say(sid, json.dumps({"ok": answer}))
            except RequestError as exc:
                await self._say(sid, json.dumps({"error": exc.code}))
        elif command == "odd-usage":
            usage = {**usage, "inputTokens": "lots", "cachedReadTokens": None, "totalTokens": [1]}
            await self._say(sid, "odd usage")
        else:
            await self._say(sid, f"echo: {text}")
        return {"stopReason": "end_turn", "usage": usage}

    def _write_transcript(self, sid: str, session: dict) -> None:
        self._append_transcript(sid, self._transcript_lines(sid, session, None))

    def _transcript_lines(self, sid: str, session: dict, at: datetime | None) -> list[dict]:
        turn = session["turns"]
        model = API_MODEL[session["model"]]
        stamp = at.isoformat(timespec="milliseconds").replace("+00:00", "Z") if at else "2026-11-22T10:00:01.000Z"
        lines = [{"type": "user", "timestamp": "2026-11-22T10:00:00.000Z"}]
        # Two API requests in this turn; the first spans three lines whose output grows.
        for req, outputs in ((f"req_t{turn}a", (1, 1, 250)), (f"req_t{turn}b", (7,))):
            for out in outputs:
                lines.append(
                    {
                        "type": "assistant",
                        "timestamp": stamp,
                        "sessionId": sid,
                        "requestId": req,
                        "isSidechain": False,
                        "message": {
                            "id": f"msg_{req}",
                            "model": model,
                            "usage": {
                                "input_tokens": 3,
                                "cache_creation_input_tokens": 1200,
                                "cache_read_input_tokens": 20000,
                                "output_tokens": out,
                                "cache_creation": {
                                    "ephemeral_5m_input_tokens": 1200,
                                    "ephemeral_1h_input_tokens": 0,
                                },
                                "service_tier": "standard",
                            },
                        },
                    }
                )
        lines.append(
            {
                "type": "assistant",
                "requestId": None,
                "message": {"id": "msg_synthetic", "model": "<synthetic>", "usage": {"output_tokens": 0}},
            }
        )
        return lines

    def _append_transcript(self, sid: str, lines: list[dict]) -> None:
        root = Path(os.environ.get("CLAUDE_CONFIG_DIR") or Path.home() / ".claude")
        path = root / "projects" / "-work-app" / f"{sid}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as fh:
            for line in lines:
                fh.write(json.dumps(line) + "\n")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--style", choices=("config", "legacy"), default="config")
    parser.add_argument("--slow-set-model", type=float, default=0.0)
    parser.add_argument("--name", default="scripted-agent")
    args = parser.parse_args()
    print("scripted agent starting; " + SECRET, file=sys.stderr, flush=True)
    agent = ScriptedAgent(args)
    reader, writer = await stdio_streams()
    agent.conn = Connection(agent.handle, writer, reader, listening=False)
    await agent.conn.main_loop()


if __name__ == "__main__":
    asyncio.run(main())
