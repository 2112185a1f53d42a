"""HTTP routes of the bridge (docs/bridge-contract.md): auth, body limit, JSON and SSE answers."""

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .agent import agent_environment
from .config import Config
from .conversation import MAX_MODELS, TokenCounter, transcript_messages
from .errors import ErrorAnswer, invalid_request, session_lost
from .relay import Relay
from .sessions import SessionManager
from .transcript import TranscriptReader
from .turns import Turn
from .usage import UsageCollector

logger = logging.getLogger("vm_bridge.app")

# Comment lines keep proxies (E2B's edge) from closing a stream during a long tool call.
_KEEPALIVE_SECONDS = 15.0


class Bridge:
    """Everything one bridge process owns, started and stopped with the app."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.relay = Relay(
            url=config.usage_url,
            sandbox_id=config.sandbox_id,
            key=config.token,
            spool_dir=config.spool_dir,
            backoff=config.relay_backoff,
            backoff_max=config.relay_backoff_max,
            max_attempts=config.relay_max_attempts,
        )
        self.transcripts = TranscriptReader(config.claude_config_dir or _default_claude_dir())
        self.usage = UsageCollector(
            relay=self.relay,
            transcripts=self.transcripts,
            transcript_wait=config.transcript_wait,
            expect_transcripts=self._agent_writes_transcripts,
        )
        self.sessions = SessionManager(
            config, on_turn_finished=self.usage.turn_finished, on_turn_started=self.usage.turn_started
        )
        self.sessions.on_orphan_rate_limits = self.relay.enqueue
        self.counter = TokenCounter(agent_environment(config))
        self._shutting_down = False

    def _agent_writes_transcripts(self) -> bool:
        # Claude Code based agents write a transcript a moment after each turn.
        return "claude" in str(self.sessions.host.info.get("name") or "").lower()

    async def start(self) -> None:
        await self.relay.start()
        await self.sessions.start()

    def begin_shutdown(self) -> None:
        """First reaction to SIGTERM: end the turns so open streams close and the server can stop."""
        if not self._shutting_down:
            self._shutting_down = True
            self.sessions.spawn(self.sessions.cancel_turns())

    async def stop(self) -> None:
        self._shutting_down = True
        await self.sessions.stop()
        with contextlib.suppress(Exception):
            self.usage.sweep()
        await self.relay.stop()


def _default_claude_dir() -> Path:
    return Path.home() / ".claude"


def create_app(config: Config) -> Starlette:
    bridge = Bridge(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await bridge.start()
        try:
            yield
        finally:
            await bridge.stop()

    async def health(request: Request) -> Response:
        _authorize(request, config)
        host = bridge.sessions.host
        if not host.ready:
            raise ErrorAnswer(503, "agent_starting", "the agent is starting; retry shortly")
        return JSONResponse(
            {
                "ok": True,
                "agent": host.info,
                "protocolVersion": host.protocol_version,
                "switchMethod": bridge.sessions.switch_method,
                "usageSpool": bridge.relay.figures(),
                "features": ["count_tokens"] if bridge.counter.available else [],
            }
        )

    async def session_new(request: Request) -> Response:
        body = await _json_body(request, config)
        cwd = _field(body, "cwd", str)
        model_id = _field(body, "modelId", str, required=False)
        return JSONResponse(await bridge.sessions.new_session(cwd=cwd, model_id=model_id))

    async def set_model(request: Request) -> Response:
        body = await _json_body(request, config)
        result = await bridge.sessions.set_model(
            session_id=_field(body, "sessionId", str), model_id=_field(body, "modelId", str)
        )
        return JSONResponse(result)

    async def session_state(request: Request) -> Response:
        body = await _json_body(request, config)
        return JSONResponse(bridge.sessions.state(session_id=_field(body, "sessionId", str)))

    async def prompt(request: Request) -> Response:
        body = await _json_body(request, config)
        session_id = _field(body, "sessionId", str)
        if "prompt" not in body:
            raise invalid_request("prompt is required", field="prompt")
        turn = bridge.sessions.prompt(session_id=session_id, prompt=body["prompt"])
        return StreamingResponse(
            _event_stream(turn),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def count_tokens(request: Request) -> Response:
        body = await _json_body(request, config)
        session_id = _field(body, "sessionId", str)
        model_ids = body.get("modelIds")
        if (
            not isinstance(model_ids, list)
            or not 0 < len(model_ids) <= MAX_MODELS
            or not all(isinstance(m, str) and m for m in model_ids)
        ):
            raise invalid_request(f"modelIds must be a list of 1 to {MAX_MODELS} model ids", field="modelIds")
        if session_id not in bridge.sessions.sessions:
            raise session_lost(session_id)
        path = bridge.transcripts.conversation_file(session_id)
        messages = await asyncio.to_thread(transcript_messages, path) if path is not None else []
        counts = await bridge.counter.count(messages=messages, model_ids=list(dict.fromkeys(model_ids)))
        return JSONResponse({"sessionId": session_id, "messages": len(messages), "inputTokens": counts})

    async def cancel(request: Request) -> Response:
        body = await _json_body(request, config)
        return JSONResponse(await bridge.sessions.cancel(session_id=_field(body, "sessionId", str)))

    async def error_answer(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ErrorAnswer)
        return JSONResponse(exc.body(), status_code=exc.status)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse({"code": code, "message": str(exc.detail), "extra": {}}, status_code=exc.status_code)

    async def server_error(request: Request, exc: Exception) -> Response:
        logger.exception("unhandled error", exc_info=exc)
        return JSONResponse(
            {"code": "internal_error", "message": "internal bridge error", "extra": {}}, status_code=500
        )

    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/session/new", session_new, methods=["POST"]),
            Route("/session/set_model", set_model, methods=["POST"]),
            Route("/session/state", session_state, methods=["POST"]),
            Route("/session/prompt", prompt, methods=["POST"]),
            Route("/session/cancel", cancel, methods=["POST"]),
            Route("/session/count_tokens", count_tokens, methods=["POST"]),
        ],
        exception_handlers={ErrorAnswer: error_answer, HTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
    )
    app.state.bridge = bridge
    return app


def _authorize(request: Request, config: Config) -> None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    # Constant-time comparison so the token cannot be guessed byte by byte from timings.
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), config.token.encode()):
        raise ErrorAnswer(401, "unauthorized", "missing or wrong bearer token")


async def _json_body(request: Request, config: Config) -> dict[str, Any]:
    _authorize(request, config)
    limit = config.max_body
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            too_big = int(declared) > limit
        except ValueError:
            raise invalid_request("bad Content-Length") from None
        if too_big:
            raise _too_large(limit)
    # Count what actually arrives too: chunked bodies carry no Content-Length.
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks))
    except ValueError:
        raise invalid_request("body is not JSON") from None
    except RecursionError:
        raise invalid_request("body is nested too deeply") from None
    if not isinstance(body, dict):
        raise invalid_request("body must be a JSON object")
    return body


def _too_large(limit: int) -> ErrorAnswer:
    return ErrorAnswer(413, "payload_too_large", f"body over {limit} bytes", {"limit": limit})


def _field(body: dict[str, Any], name: str, kind: type, *, required: bool = True) -> Any:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, kind) or (kind is str and not value):
        raise invalid_request(
            f"{name} is required and must be a {'string' if kind is str else kind.__name__}", field=name
        )
    return value


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def _event_stream(turn: Turn) -> AsyncIterator[str]:
    ended = False
    try:
        while True:
            try:
                event, data = await asyncio.wait_for(turn.queue.get(), _KEEPALIVE_SECONDS)
            except TimeoutError:
                yield ": keepalive\n\n"
                continue
            yield _sse(event, data)
            if event in ("done", "error"):
                ended = True
                return
    finally:
        if not ended:
            turn.client_gone()
