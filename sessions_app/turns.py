"""A chat turn relayed from the session's bridge on the event loop: it holds no thread while the
agent works, so one web process carries as many open turns as it has sockets and memory for
(docs/ARCHITECTURE.md, "How a chat turn is served")."""

import asyncio
import logging
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import TypeVar

from .bridge_client import BridgeError, StreamEvent
from .errors import api_error_from_bridge
from .services import TurnTarget

logger = logging.getLogger(__name__)
T = TypeVar("T")

_ENDS = ("done", "error")
# Cancels sent for turns whose client went away; the loop keeps only weak references to tasks.
_cancelling: set[asyncio.Task] = set()


async def turn_start(*, target: TurnTarget, prompt: str) -> AsyncIterator[StreamEvent]:
    """Start the turn and wait for its first event. Failures before the turn starts raise a
    ServiceError (a plain error answer); later ones end the stream with an `error` event, so a
    client always learns how its turn ended."""
    events = target.bridge.aprompt(session_id=target.session_id, prompt=prompt)
    try:
        first = await anext(events)
    except StopAsyncIteration:
        first = None
    except BridgeError as exc:
        raise api_error_from_bridge(exc) from exc
    except asyncio.CancelledError:
        # The client went away before the agent's first event.
        _cancel_in_background(target)
        raise
    return _relay(target, first, events)


async def _relay(
    target: TurnTarget, first: StreamEvent | None, events: AsyncIterator[StreamEvent]
) -> AsyncIterator[StreamEvent]:
    if first is None:
        yield StreamEvent("error", {"code": "agent_error", "message": "The agent ended the turn without an answer."})
        return
    ended = first.event in _ENDS
    try:
        yield first
        async for event in events:
            yield event
            ended = event.event in _ENDS
        if not ended:
            yield StreamEvent("error", {"code": "agent_error", "message": "The turn's stream broke off."})
    except BridgeError as exc:
        error = api_error_from_bridge(exc)
        yield StreamEvent("error", {"code": error.code, "message": error.message})
    finally:
        # Closing the bridge's stream tells the bridge its client is gone; the explicit cancel
        # also reaches a bridge behind a proxy that keeps its upstream connection open. Either
        # way the agent stops working (and spending) on a turn nobody reads any more.
        await events.aclose()
        if not ended:
            _cancel_in_background(target)


def _cancel_in_background(target: TurnTarget) -> None:
    task = asyncio.get_running_loop().create_task(_cancel(target))
    _cancelling.add(task)
    task.add_done_callback(_cancelling.discard)


async def _cancel(target: TurnTarget) -> None:
    try:
        await target.bridge.acancel(session_id=target.session_id)
    except BridgeError as exc:
        logger.info("turn of ACP session %s: cancel not delivered (%s)", target.session_id, exc.kind)


# Under WSGI (the test client, a threaded WSGI server) no event loop outlives a request's view, so
# the turn runs on one loop of the process's own and the request's thread waits for each event
# in turn, as a thread per turn always did there.
_wsgi_loop: asyncio.AbstractEventLoop | None = None
_wsgi_loop_lock = threading.Lock()


def _loop_for_wsgi() -> asyncio.AbstractEventLoop:
    global _wsgi_loop
    with _wsgi_loop_lock:
        if _wsgi_loop is None:
            _wsgi_loop = asyncio.new_event_loop()
            threading.Thread(target=_wsgi_loop.run_forever, name="turns", daemon=True).start()
        return _wsgi_loop


async def turn_start_for_wsgi(*, target: TurnTarget, prompt: str) -> AsyncIterator[StreamEvent]:
    """turn_start on the process's turn loop; read what it gives through `blocking_iter`."""
    started = asyncio.run_coroutine_threadsafe(turn_start(target=target, prompt=prompt), _loop_for_wsgi())
    return await asyncio.wrap_future(started)


def blocking_iter(items: AsyncGenerator[T]) -> Iterator[T]:
    """Iterate, on the calling thread, an asynchronous generator that runs on the turn loop;
    closing this iterator closes it there."""
    loop = _loop_for_wsgi()
    try:
        while True:
            try:
                yield asyncio.run_coroutine_threadsafe(_next(items), loop).result()
            except StopAsyncIteration:
                return
    finally:
        asyncio.run_coroutine_threadsafe(items.aclose(), loop).result()


async def _next(items: AsyncGenerator[T]) -> T:
    return await anext(items)
