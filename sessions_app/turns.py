"""A chat turn relayed from the session's bridge on the event loop: it holds no thread while the
agent works, so one web process carries as many open turns as it has sockets and memory for
(docs/ARCHITECTURE.md, "How a chat turn is served")."""

import asyncio
import logging
from collections.abc import AsyncIterator

from .bridge_client import BridgeError, StreamEvent
from .errors import api_error_from_bridge
from .services import TurnTarget

logger = logging.getLogger(__name__)

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
