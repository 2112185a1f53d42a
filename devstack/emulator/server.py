"""HTTP surface: /v1/messages (+ streaming), /v1/messages/count_tokens, /v1/models, and
loopback-only admin endpoints under /_emulator/ for tests (clock, reset, request log)."""

from __future__ import annotations

import collections
import hashlib
import json
import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from . import latency, models, replies
from .cache import Clock, PromptCache, breakpoints
from .diagnostics import Diagnostics, fingerprint
from .streaming import Pace, message_events
from .tokens import PromptError, build_prompt, count_text

log = logging.getLogger("devstack.emulator")

MAX_BODY = 32 * 1024 * 1024
_LOOPBACK = {"127.0.0.1", "::1", "localhost", "testclient"}


class ApiError(Exception):
    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


def error_response(status: int, kind: str, message: str, request_id: str | None = None) -> JSONResponse:
    request_id = request_id or replies.new_id("req")
    return JSONResponse(
        {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id},
        status_code=status,
        headers={"request-id": request_id},
    )


LATENCIES = ("none", "realistic")


class State:
    def __init__(self, time_offset: float = 0.0, latency: str = "none") -> None:
        self.latency = latency
        self.clock = Clock(time_offset)
        self.cache = PromptCache(self.clock)
        self.diagnostics = Diagnostics()
        self.requests: collections.deque = collections.deque(maxlen=10_000)
        self.unknown: collections.deque = collections.deque(maxlen=1_000)

    def reset(self) -> None:
        self.clock.reset()
        self.cache.reset()
        self.diagnostics.reset()
        self.requests.clear()
        self.unknown.clear()


def _api_key(request: Request) -> str:
    key = request.headers.get("x-api-key", "").strip()
    if not key:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            key = auth[7:].strip()
    if not key:
        raise ApiError(401, "authentication_error", "x-api-key header is required")
    return key


async def _json_body(request: Request) -> dict:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise ApiError(413, "request_too_large", "Request exceeds the maximum allowed number of bytes.")
    try:
        body = json.loads(raw or b"null")
    except ValueError as exc:
        raise ApiError(400, "invalid_request_error", f"Invalid JSON body: {exc}") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request_error", "Request body must be a JSON object")
    return body


def _resolve(request: Request, body: dict) -> models.ResolvedModel:
    name = body.get("model")
    if not isinstance(name, str) or not name:
        raise ApiError(400, "invalid_request_error", "model: Field required")
    resolved = models.resolve(name, betas=request.headers.get("anthropic-beta", ""))
    if resolved is None:
        raise ApiError(404, "not_found_error", f"model: {name}")
    return resolved


def _prompt(body: dict, resolved: models.ResolvedModel):
    try:
        prompt = build_prompt(body, resolved.spec.ratio_pct)
        points = breakpoints(prompt, body.get("cache_control"))
    except PromptError as exc:
        raise ApiError(400, "invalid_request_error", str(exc)) from exc
    window = models.context_window(resolved)
    if prompt.total > window:
        raise ApiError(400, "invalid_request_error", f"prompt is too long: {prompt.total} tokens > {window} maximum")
    return prompt, points


def _key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


async def messages(request: Request) -> Response:
    state: State = request.app.state.emulator
    started = state.clock.now()
    key = _api_key(request)
    body = await _json_body(request)
    resolved = _resolve(request, body)
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise ApiError(
            400,
            "invalid_request_error",
            "max_tokens: Field required"
            if max_tokens is None
            else "max_tokens: Input should be greater than or equal to 1",
        )
    prompt, points = _prompt(body, resolved)
    spec = resolved.spec
    usage = state.cache.account(
        key=key, model=spec.id, prompt=prompt, points=points, min_cacheable=spec.min_cacheable, now=started
    )

    tool_block = replies.forced_tool(body)
    if tool_block is not None:
        content = [tool_block]
        output_tokens = count_text(tool_block["name"] + " " + json.dumps(tool_block["input"]), spec.ratio_pct)
        stop_reason = "tool_use"
    else:
        structured = replies.structured_text(body)
        text, cut = (
            (structured, False)
            if structured is not None
            else replies.truncate(replies.reply_text(body, spec.id), max_tokens, spec.ratio_pct)
        )
        content = [{"type": "text", "text": text}]
        output_tokens = max(1, count_text(text, spec.ratio_pct))
        stop_reason = "max_tokens" if cut else "end_turn"

    message_id, request_id = replies.new_id("msg"), replies.new_id("req")
    api_usage = usage.as_api(output_tokens)
    fp = fingerprint(
        key=key, model=spec.id, prompt=prompt, body=body, cached_tokens=usage.cache_read + usage.cache_creation
    )
    asked = body.get("diagnostics")
    diagnostics = state.diagnostics.diagnose(asked.get("previous_message_id"), fp) if isinstance(asked, dict) else None
    state.diagnostics.remember(message_id, fp)
    state.requests.append(
        {
            "requestId": request_id,
            "messageId": message_id,
            "keyId": _key_id(key),
            "model": spec.id,
            "requestedModel": resolved.requested,
            "stream": bool(body.get("stream")),
            "at": started,
            "betas": request.headers.get("anthropic-beta", ""),
            "longContext": resolved.long_context,
            "blocks": len(prompt.blocks),
            "breakpoints": [bp.index for bp in points],
            "readIndex": usage.read_index,
            "written": usage.written,
            "usage": api_usage,
            "diagnostics": diagnostics,
        }
    )
    message = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": resolved.requested,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": api_usage,
    }
    if isinstance(asked, dict):
        message["diagnostics"] = diagnostics
    headers = {"request-id": request_id, "anthropic-organization-id": "emulated-org"}
    pace = Pace.of(latency_mode=state.latency, spec=spec, usage=usage)
    if body.get("stream"):
        return StreamingResponse(
            message_events(message, pace),
            media_type="text/event-stream",
            headers={**headers, "cache-control": "no-cache"},
        )
    await pace.wait(pace.first_token_s + latency.output_seconds(spec.id, output_tokens))
    return JSONResponse(message, headers=headers)


async def count_tokens(request: Request) -> Response:
    _api_key(request)
    body = await _json_body(request)
    resolved = _resolve(request, body)
    prompt, _ = _prompt(body, resolved)
    return JSONResponse({"input_tokens": prompt.total}, headers={"request-id": replies.new_id("req")})


def _model_json(spec: models.ModelSpec) -> dict:
    return {"type": "model", "id": spec.id, "display_name": spec.display_name, "created_at": spec.created_at}


async def list_models(request: Request) -> Response:
    _api_key(request)
    data = [_model_json(s) for s in sorted(models.MODELS.values(), key=lambda s: s.created_at, reverse=True)]
    limit = request.query_params.get("limit")
    if limit and limit.isdigit():
        data = data[: int(limit)]
    return JSONResponse(
        {
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }
    )


async def get_model(request: Request) -> Response:
    _api_key(request)
    resolved = models.resolve(request.path_params["model_id"])
    if resolved is None:
        raise ApiError(404, "not_found_error", f"model: {request.path_params['model_id']}")
    return JSONResponse(_model_json(resolved.spec))


def _admin_only(request: Request) -> None:
    host = request.client.host if request.client else ""
    if host not in _LOOPBACK:
        raise ApiError(403, "permission_error", "admin endpoints answer loopback clients only")


async def admin_advance(request: Request) -> Response:
    _admin_only(request)
    body = await _json_body(request)
    seconds = body.get("seconds")
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        raise ApiError(400, "invalid_request_error", "seconds: a number is required")
    now = request.app.state.emulator.clock.advance(float(seconds))
    return JSONResponse({"now": now, "offset": request.app.state.emulator.clock.offset})


async def admin_reset(request: Request) -> Response:
    _admin_only(request)
    request.app.state.emulator.reset()
    return JSONResponse({"ok": True})


async def admin_state(request: Request) -> Response:
    _admin_only(request)
    state: State = request.app.state.emulator
    return JSONResponse(
        {
            "now": state.clock.now(),
            "offset": state.clock.offset,
            "liveEntries": state.cache.live_entries(),
            "requests": len(state.requests),
            "unknownPaths": list(state.unknown),
        }
    )


async def admin_requests(request: Request) -> Response:
    _admin_only(request)
    state: State = request.app.state.emulator
    return JSONResponse({"requests": list(state.requests)})


async def unknown(request: Request) -> Response:
    state: State = request.app.state.emulator
    state.unknown.append(f"{request.method} {request.url.path}")
    log.warning("unknown path: %s %s", request.method, request.url.path)
    raise ApiError(404, "not_found_error", f"Not found: {request.method} {request.url.path}")


async def _api_error(request: Request, exc: ApiError) -> Response:
    return error_response(exc.status, exc.kind, exc.message)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    kind = {404: "not_found_error", 405: "invalid_request_error"}.get(exc.status_code, "api_error")
    return error_response(exc.status_code, kind, str(exc.detail))


async def _crash(request: Request, exc: Exception) -> Response:
    log.exception("emulator error on %s %s", request.method, request.url.path)
    return error_response(500, "api_error", "Internal server error")


_ALL = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def create_app(*, time_offset: float = 0.0, latency: str = "none") -> Starlette:
    app = Starlette(
        routes=[
            Route("/v1/messages", messages, methods=["POST"]),
            Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/v1/models/{model_id:path}", get_model, methods=["GET"]),
            Route("/_emulator/advance", admin_advance, methods=["POST"]),
            Route("/_emulator/reset", admin_reset, methods=["POST"]),
            Route("/_emulator/state", admin_state, methods=["GET"]),
            Route("/_emulator/requests", admin_requests, methods=["GET"]),
            Route("/{path:path}", unknown, methods=_ALL),
        ],
        exception_handlers={ApiError: _api_error, HTTPException: _http_error, Exception: _crash},
    )
    app.state.emulator = State(time_offset, latency)
    return app
