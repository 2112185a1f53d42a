"""A chat turn relayed from the session's bridge on the event loop: it holds no thread while the
agent works, so one web process carries as many open turns as it has sockets and memory for
(docs/ARCHITECTURE.md, "How a chat turn is served")."""

import asyncio
import atexit
import concurrent.futures
import logging
import queue
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from typing import Any, Self, TypeVar

from django.utils import timezone

from mk0r.threadpool import run_in_thread_pool

from .bridge_client import BridgeError, StreamEvent
from .errors import api_error_from_bridge
from .liveness import session_bridge_failure
from .services import TurnTarget, TurnWatch, session_turn_ended

logger = logging.getLogger(__name__)
T = TypeVar("T")
# How the relay runs the turn's synchronous database work (the loop itself must not wait on it).
RunSync = Callable[..., Awaitable[Any]]

_ENDS = ("done", "error")
# Cancels sent for turns whose client went away; the loop keeps only weak references to tasks.
_cancelling: set[asyncio.Task] = set()


class _Frames:
    """A turn's frames as Django reads them: the first one, made as the turn started, then the
    relay's. Closing it closes the relay, whether or not a frame was asked for."""

    __slots__ = ("_first", "_relay")

    def __init__(self, first: bytes, relay: AsyncGenerator[bytes]) -> None:
        self._first: bytes | None = first
        self._relay = relay

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        if self._first is None:
            return await anext(self._relay)
        first, self._first = self._first, None
        return first

    async def aclose(self) -> None:
        await self._relay.aclose()


async def turn_start(*, target: TurnTarget, prompt: str, run_sync: RunSync = run_in_thread_pool) -> _Frames:
    """Start the turn and wait for its first event; the frames returned are the turn's events
    as server-sent event frames, for the client. Failures before the turn starts raise a
    ServiceError (a plain error answer; 410 `sandbox_gone` when the bridge is unreachable because
    its sandbox is gone); later ones end the stream with an `error` event, so a client always
    learns how its turn ended. A turn that started is stored when it ends, however it ends."""
    watch = TurnWatch(session=target.session, started=timezone.now(), prompt=prompt)
    events = target.bridge.aprompt(session_id=target.session_id, prompt=prompt)
    try:
        first = await anext(events)
    except StopAsyncIteration:
        first = None
    except BridgeError as exc:
        raise await run_sync(session_bridge_failure, session=target.session, error=exc) from exc
    except asyncio.CancelledError:
        # The client went away before the agent's first event.
        _cancel_in_background(target)
        await _record_end(watch, None, run_sync)
        raise
    relay = _relay(target, first, events, watch=watch, run_sync=run_sync)
    # Started here, up to its first frame: the event loop closes a started async generator that
    # is dropped (running the relay's `finally`), so a turn whose response Django drops before
    # its first send (the client gone meanwhile) is still cancelled and stored. A generator that
    # never started would be dropped with nothing run.
    return _Frames(await anext(relay), relay)


async def _relay(
    target: TurnTarget,
    first: StreamEvent | None,
    events: AsyncIterator[StreamEvent],
    *,
    watch: TurnWatch,
    run_sync: RunSync,
) -> AsyncGenerator[bytes]:
    if first is None:
        no_answer = {"code": "agent_error", "message": "The agent ended the turn without an answer."}
        yield await _passed_on(watch, StreamEvent("error", no_answer), run_sync)
        return
    ended = first.event in _ENDS
    try:
        frame = await _passed_on(watch, first, run_sync)
        # Only the frame being sent is kept while the turn waits for its next event, no decoded
        # event (as in the bridge client): about 3 KiB of each open turn's memory.
        del first
        yield frame
        async for event in events:
            ended = event.event in _ENDS
            frame = await _passed_on(watch, event, run_sync)
            del event
            yield frame
        if not ended:
            broke_off = {"code": "agent_error", "message": "The turn's stream broke off."}
            yield await _passed_on(watch, StreamEvent("error", broke_off), run_sync)
    except BridgeError as exc:
        error = api_error_from_bridge(exc)
        yield await _passed_on(watch, StreamEvent("error", {"code": error.code, "message": error.message}), run_sync)
    finally:
        # Closing the bridge's stream tells the bridge its client is gone; the explicit cancel
        # also reaches a bridge behind a proxy that keeps its upstream connection open. Either
        # way the agent stops working (and spending) on a turn nobody reads any more.
        await events.aclose()
        if not ended:
            _cancel_in_background(target)
        if not watch.recorded:
            # The client went away before the turn's end reached it: the turn is kept as far as
            # it was streamed.
            await _record_end(watch, None, run_sync)


async def _passed_on(watch: TurnWatch, event: StreamEvent, run_sync: RunSync) -> bytes:
    """The event's frame, once what it ends (if it is the turn's `done` or `error`) is recorded."""
    if watch.saw(event):
        await _record_end(watch, event, run_sync)
    return event.sse()


async def _record_end(watch: TurnWatch, end: StreamEvent | None, run_sync: RunSync) -> None:
    """The turn's end, recorded before the client gets it (`end`; None when the client went away
    first): in the session's cache state, so that the quote it asks for next sees the turn, and
    as a stored turn of its conversation. Whatever goes wrong here (the writes, or reaching a
    thread to make them on) must not cost the client its turn: the relayed usage brings the
    cache state up to date a moment later anyway."""
    if watch.recorded:
        return
    watch.recorded = True
    try:
        await run_sync(session_turn_ended, watch=watch, end=end)
    except Exception:
        logger.exception("session %s: could not record the end of a turn", watch.session.key)
    finally:
        watch.text.close()


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
# in turn, as a thread per turn always did there. The turn's database work runs on the request's
# thread meanwhile, with the request's database connection (in tests, the test's transaction).
_wsgi_loop: asyncio.AbstractEventLoop | None = None
_wsgi_loop_lock = threading.Lock()


def _loop_for_wsgi() -> asyncio.AbstractEventLoop:
    global _wsgi_loop
    with _wsgi_loop_lock:
        if _wsgi_loop is None:
            started: concurrent.futures.Future[asyncio.Future] = concurrent.futures.Future()
            thread = threading.Thread(target=asyncio.run, args=(_turn_loop(started),), name="turns", daemon=True)
            thread.start()
            stop = started.result()
            _wsgi_loop = stop.get_loop()
            # At the process's exit the loop ends as asyncio.run ends one: the tasks left are
            # cancelled (the bridge client's among them, which closes its connections so).
            atexit.register(_turn_loop_stop, stop, thread)
        return _wsgi_loop


async def _turn_loop(started: concurrent.futures.Future) -> None:
    stop = asyncio.get_running_loop().create_future()
    started.set_result(stop)
    await stop


def _turn_loop_stop(stop: asyncio.Future, thread: threading.Thread) -> None:
    stop.get_loop().call_soon_threadsafe(stop.set_result, None)
    thread.join(timeout=5)


class _RequestThread:
    """Runs, on the thread that waits for a step of the turn, the synchronous calls the step
    makes on the turn loop (its `run_sync`). A call made while no step runs (the loop closing a
    turn its request dropped unclosed) is refused: nothing would ever run it."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self._waiting = False

    async def run(self, fn, /, **kwargs):
        if not self._waiting:
            raise RuntimeError("the request's thread no longer waits for this turn")
        result: concurrent.futures.Future = concurrent.futures.Future()
        self._calls.put((fn, kwargs, result))
        return await asyncio.wrap_future(result)

    def wait(self, step: Coroutine[Any, Any, T], loop: asyncio.AbstractEventLoop) -> T:
        """Run `step` on `loop`, and its calls here, until it is done."""
        self._waiting = True
        try:
            future = asyncio.run_coroutine_threadsafe(step, loop)
            future.add_done_callback(lambda _: self._calls.put(None))
            while (call := self._calls.get()) is not None:
                fn, kwargs, result = call
                try:
                    result.set_result(fn(**kwargs))
                except Exception as exc:
                    result.set_exception(exc)
            return future.result()
        finally:
            self._waiting = False


def turn_start_blocking(*, target: TurnTarget, prompt: str) -> Iterator[bytes]:
    """turn_start for a WSGI request's thread: the turn runs on the process's turn loop, and the
    returned iterator waits for each of its events in turn; closing it closes the turn."""
    loop, request_thread = _loop_for_wsgi(), _RequestThread()
    frames = request_thread.wait(turn_start(target=target, prompt=prompt, run_sync=request_thread.run), loop)
    return _BlockingFrames(frames, loop, request_thread)


class _BlockingFrames:
    """A turn's frames for a WSGI request's thread, each waited for in turn. Django closes the
    response however it ends, read or not; closing this closes the turn, on this thread."""

    def __init__(self, frames: _Frames, loop: asyncio.AbstractEventLoop, request_thread: _RequestThread) -> None:
        self._frames, self._loop, self._request_thread = frames, loop, request_thread
        self._closed = False

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> bytes:
        try:
            return self._request_thread.wait(anext(self._frames), self._loop)
        except StopAsyncIteration:
            raise StopIteration from None

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._request_thread.wait(self._frames.aclose(), self._loop)
