"""The one HTTP client for the bridge inside a session's sandbox (docs/bridge-contract.md).

Explicit connect/read timeouts, no redirects, retries only for idempotent calls
and only on transient failures, and one error type that says what went wrong
and whether trying again can help.
"""

import asyncio
import contextvars
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import aiohttp
import httpx
from aiohttp.http_exceptions import ContentEncodingError
from django.conf import settings

logger = logging.getLogger(__name__)


class BridgeErrorKind(StrEnum):
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    SESSION_LOST = "session_lost"
    MODEL_REJECTED = "model_rejected"
    OTHER = "other"


class BridgeError(Exception):
    def __init__(
        self,
        kind: BridgeErrorKind,
        message: str,
        *,
        permanent: bool,
        status: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.permanent = permanent
        self.status = status
        self.extra = extra or {}


@dataclass(frozen=True)
class NewSession:
    session_id: str
    model_id: str | None  # None: the agent did not say which model the session started on
    available_models: list[dict[str, Any]]


@dataclass(frozen=True)
class StreamEvent:
    event: str
    data: dict[str, Any] = field(default_factory=dict)
    # The event as the bridge framed it (`event:` and one `data:` line of a JSON object), to pass
    # on as it came; empty for an event to encode from `event` and `data`.
    frame: bytes = field(default=b"", compare=False, repr=False)

    def sse(self) -> bytes:
        """The event as server-sent event bytes: as the bridge framed it, or encoded here."""
        if self.frame:
            return self.frame
        return f"event: {self.event}\ndata: {json.dumps(self.data, separators=(',', ':'))}\n\n".encode()


# One pooled client per process: keeps connections to bridges alive across requests. Made with the
# module rather than at the first call, which would pay for building httpx's transport (httpcore's
# imports and a TLS context): a worker's first model switch took 50 ms more than the next.
_http = httpx.Client(follow_redirects=False, limits=httpx.Limits(max_keepalive_connections=64))


# One pooled asynchronous client per event loop (a uvicorn worker has one), for the turn's stream
# and its cancel: aiohttp, whose parser is in C and whose per-read timeout costs a timer, where
# httpx's stack costs several times the CPU per event (docs/PERFORMANCE.md, "Open chat turns").
# A stream holds its connection for the whole turn, so the number of connections is not capped:
# the streams are. Proxies come from the environment, as for httpx.
_async_http: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}
_async_http_closers: set[asyncio.Task] = set()


def _shared_async_http() -> aiohttp.ClientSession:
    loop = asyncio.get_running_loop()
    client = _async_http.get(loop)
    if client is None:
        client = _async_http[loop] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), trust_env=True)
        # In a context of its own: it outlives the request that made the client.
        closer = loop.create_task(_closed_with_its_loop(loop, client), context=contextvars.Context())
        _async_http_closers.add(closer)
        closer.add_done_callback(_async_http_closers.discard)
    return client


async def _closed_with_its_loop(loop: asyncio.AbstractEventLoop, client: aiohttp.ClientSession) -> None:
    """Waits for the loop's end (asyncio.run cancels the tasks left when its coroutine returns),
    then closes the loop's client and its connections; one left open warns when collected."""
    try:
        await loop.create_future()
    finally:
        del _async_http[loop]
        await client.close()


_BACKOFF_SECONDS = 0.1


def call_budget_seconds() -> float:
    """The longest one idempotent call can take: every attempt waiting out its connect and read
    timeouts, and the backoff between attempts."""
    attempts = 1 + settings.BRIDGE_RETRIES
    backoff = sum(_BACKOFF_SECONDS * 2**attempt for attempt in range(attempts - 1))
    return attempts * (settings.BRIDGE_CONNECT_TIMEOUT + settings.BRIDGE_READ_TIMEOUT) + backoff


class BridgeClient:
    def __init__(self, *, base_url: str, token: str, extra_headers: dict[str, str] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", **(extra_headers or {})}

    def _timeout(self) -> httpx.Timeout:
        return httpx.Timeout(
            connect=settings.BRIDGE_CONNECT_TIMEOUT,
            read=settings.BRIDGE_READ_TIMEOUT,
            write=settings.BRIDGE_READ_TIMEOUT,
            pool=settings.BRIDGE_CONNECT_TIMEOUT,
        )

    @staticmethod
    def _async_timeout(read: float) -> aiohttp.ClientTimeout:
        """`connect` covers the wait for a pooled connection and opening a new one; `read`, each
        read of the answer (its head, then each piece of its body)."""
        return aiohttp.ClientTimeout(total=None, connect=settings.BRIDGE_CONNECT_TIMEOUT, sock_read=read)

    def _call(self, method: str, path: str, body: dict | None = None, *, idempotent: bool) -> dict[str, Any]:
        attempts = 1 + (settings.BRIDGE_RETRIES if idempotent else 0)
        for attempt in range(attempts):
            try:
                response = _http.request(
                    method, self.base_url + path, json=body, headers=self._headers, timeout=self._timeout()
                )
                if response.status_code >= 400:
                    raise _error_from_answer(response.status_code, response.content)
                answer = response.json()
                if not isinstance(answer, dict):
                    raise ValueError("not a JSON object")
                return answer
            except (httpx.RequestError, BridgeError, ValueError) as exc:
                error = exc if isinstance(exc, BridgeError) else _error_from_transport(exc)
                if error.permanent or attempt + 1 == attempts:
                    raise error from exc
                logger.info("bridge %s %s failed (%s), retrying", method, path, error.kind)
                time.sleep(_BACKOFF_SECONDS * 2**attempt)
        raise AssertionError("unreachable")

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health", idempotent=True)

    def new_session(self, *, cwd: str, model_id: str | None = None) -> NewSession:
        # Not idempotent: a retry after a lost answer would leave an orphan ACP session.
        body = {"cwd": cwd, **({"modelId": model_id} if model_id else {})}
        data = self._call("POST", "/session/new", body, idempotent=False)
        session_id, model_id = data.get("sessionId"), data.get("modelId")
        if not isinstance(session_id, str) or not session_id:
            raise BridgeError(
                BridgeErrorKind.OTHER, "The bridge answered session/new without a session.", permanent=True
            )
        return NewSession(session_id, _str_or_none(model_id), _offered_models(data.get("availableModels")))

    def set_model(self, *, session_id: str, model_id: str) -> dict[str, Any]:
        # Setting a model is idempotent: a retried call lands in the same state.
        return self._call("POST", "/session/set_model", {"sessionId": session_id, "modelId": model_id}, idempotent=True)

    def session_state(self, *, session_id: str) -> dict[str, Any]:
        """The model the agent last confirmed for the session, and its switches' state; a field of
        the wrong type reads as absent."""
        state = self._call("POST", "/session/state", {"sessionId": session_id}, idempotent=True)
        return {
            **state,
            "switchPending": _str_or_none(state.get("switchPending")),
            "lastSwitch": state.get("lastSwitch") if isinstance(state.get("lastSwitch"), dict) else None,
            "availableModels": _offered_models(state.get("availableModels")),
        }

    def count_tokens(self, *, session_id: str, model_ids: list[str], timeout: float) -> dict[str, int]:
        """The session's conversation counted for each model (`/session/count_tokens`): one try,
        `timeout` seconds for connecting and for the answer each (it is only worth it when fast)."""
        try:
            response = _http.post(
                self.base_url + "/session/count_tokens",
                json={"sessionId": session_id, "modelIds": model_ids},
                headers=self._headers,
                timeout=httpx.Timeout(timeout),
            )
            if response.status_code >= 400:
                raise _error_from_answer(response.status_code, response.content)
            counts = response.json()["inputTokens"]
            return {model: int(counts[model]) for model in model_ids}
        except httpx.RequestError as exc:
            raise _error_from_transport(exc) from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise BridgeError(BridgeErrorKind.OTHER, "The bridge sent an unreadable count.", permanent=True) from exc

    def cancel(self, *, session_id: str) -> None:
        self._call("POST", "/session/cancel", {"sessionId": session_id}, idempotent=True)

    async def acancel(self, *, session_id: str) -> None:
        """Cancel the session's running turn (a no-op when none runs); one attempt, no retries:
        a caller that stops a turn wants to know at once whether it reached the agent."""
        try:
            async with _shared_async_http().post(
                self.base_url + "/session/cancel",
                json={"sessionId": session_id},
                headers=self._headers,
                timeout=self._async_timeout(settings.BRIDGE_READ_TIMEOUT),
                allow_redirects=False,
            ) as response:
                body = await response.read()  # read whole, the connection goes back to the pool
        except aiohttp.ClientError as exc:
            raise _error_from_transport(exc) from exc
        if response.status >= 400:
            raise _error_from_answer(response.status, body)

    async def aprompt(self, *, session_id: str, prompt: str) -> AsyncIterator[StreamEvent]:
        """Yield the turn's server-sent events; errors before the stream starts raise BridgeError.
        Closing the iterator closes the connection, which the bridge takes as the client gone."""
        try:
            # Left unfinished, the answer's connection is closed rather than pooled.
            async with _shared_async_http().post(
                self.base_url + "/session/prompt",
                json={"sessionId": session_id, "prompt": prompt},
                headers=self._headers,
                timeout=self._async_timeout(settings.BRIDGE_PROMPT_TIMEOUT),
                allow_redirects=False,
            ) as response:
                if response.status >= 400:
                    raise _error_from_answer(response.status, await response.read())
                parser = SseParser()
                async for chunk in response.content.iter_any():
                    for event in parser.feed(chunk):
                        yield event
                        # An open turn keeps no decoded event while it waits for the next one
                        # (with the relay's, about 3 KiB of each open turn's memory).
                        del event
                event = parser.end()
                if event is not None:
                    yield event
        except aiohttp.ClientError as exc:
            raise _error_from_transport(exc) from exc


class SseParser:
    """Server-sent events from a stream's bytes, as they arrive. Lines end with LF or CRLF; an
    empty line ends an event. An event of `event:` and one `data:` line holding a JSON object
    keeps its bytes (StreamEvent.frame), so that the relay passes it on without encoding it again."""

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        # A CR that ends the chunk stays in the rest until the LF after it comes.
        *blocks, self._rest = (self._rest + chunk).replace(b"\r\n", b"\n").split(b"\n\n")
        return [event for block in blocks if (event := _event(block)) is not None]

    def end(self) -> StreamEvent | None:
        block, self._rest = self._rest, b""
        return _event(block)


def _event(block: bytes) -> StreamEvent | None:
    """The event of one block of lines (None for a block without data)."""
    name, data = b"message", []
    for line in block.split(b"\n"):
        if line.startswith(b"event:"):
            name = line[6:].strip()
        elif line.startswith(b"data:"):
            data.append(line[5:].lstrip())
    if not data:
        return None
    event, raw = name.decode("utf-8", "replace"), b"\n".join(data).decode("utf-8", "replace")
    try:
        value = json.loads(raw)
    except ValueError:
        return StreamEvent(event, {"text": raw})
    if not isinstance(value, dict):
        return StreamEvent(event, {"value": value})
    frame = b"event: " + name + b"\ndata: " + data[0] + b"\n\n" if len(data) == 1 else b""
    return StreamEvent(event, value, frame)


def _offered_models(value: Any) -> list[dict[str, Any]]:
    """The models an answer offers ([{modelId, name, description}]), without the entries that
    are not objects naming a model."""
    if not isinstance(value, list):
        return []
    return [m for m in value if isinstance(m, dict) and isinstance(m.get("modelId"), str) and m["modelId"]]


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _error_from_transport(exc: Exception) -> BridgeError:
    """A failure below HTTP, raised by httpx (the synchronous calls) or aiohttp (the stream and
    the cancel): the same failure is the same error from either."""
    read_timeout = (
        isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
    ) or isinstance(exc, aiohttp.SocketTimeoutError)
    if read_timeout:
        return BridgeError(BridgeErrorKind.TIMEOUT, "The agent bridge did not answer in time.", permanent=True)
    # aiohttp raises a body it cannot decode and a body cut short alike; the cause tells them apart.
    if isinstance(exc, ValueError | httpx.DecodingError) or isinstance(exc.__cause__, ContentEncodingError):
        return BridgeError(BridgeErrorKind.OTHER, "The agent bridge sent an unreadable answer.", permanent=True)
    # Connect failures and dropped connections: the VM may be waking up; worth one more try.
    return BridgeError(BridgeErrorKind.UNREACHABLE, "The agent bridge could not be reached.", permanent=False)


def _error_from_answer(status: int, content: bytes) -> BridgeError:
    """The error an HTTP error answer (`status`, its body `content`) stands for."""
    try:
        body = json.loads(content)
    except ValueError:
        body = {}
    code = body.get("code") if isinstance(body, dict) else None
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message:
        message = f"Bridge answered {status}."
    extra = body.get("extra") if isinstance(body, dict) and isinstance(body.get("extra"), dict) else {}
    if code == "agent_session_lost" or status == 409:
        return BridgeError(BridgeErrorKind.SESSION_LOST, message, permanent=True, status=status, extra=extra)
    if code == "model_rejected":
        return BridgeError(BridgeErrorKind.MODEL_REJECTED, message, permanent=True, status=status, extra=extra)
    if code == "agent_timeout" or status == 504:
        return BridgeError(BridgeErrorKind.TIMEOUT, message, permanent=True, status=status, extra=extra)
    # 503: the agent is restarting; 502 without the bridge's own code: the VM's proxy could not
    # reach the bridge yet. Both pass; anything else will fail the same way again.
    if status == 503 or (status == 502 and code != "agent_error"):
        return BridgeError(BridgeErrorKind.UNREACHABLE, message, permanent=False, status=status, extra=extra)
    return BridgeError(BridgeErrorKind.OTHER, message, permanent=True, status=status, extra=extra)
