"""ACP sessions on the one agent: create, switch model, run turns, cancel.

Every HTTP route calls one method here; this module turns agent answers and failures
into the contract's results and errors (docs/bridge-contract.md).
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acp import RequestError

from .agent import AgentDied, AgentHost
from .client_methods import build_handler
from .config import Config
from .errors import (
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    ErrorAnswer,
    agent_message,
    from_acp,
    invalid_request,
    session_lost,
)
from .model_options import CONFIG_OPTION, ModelState, from_config_options, from_new_session
from .turns import Turn, prompt_blocks, turn_usage
from .usage import now_iso, rate_limit_records

logger = logging.getLogger("vm_bridge.sessions")

TurnFinished = Callable[..., Awaitable[None]]
TurnStarted = Callable[[str, str | None], None]


@dataclass
class Session:
    session_id: str
    cwd: str
    generation: int
    models: ModelState
    turns: int = 0
    lost: bool = False
    listeners: set[Turn] = field(default_factory=set)
    # Rate-limit records seen since the last relay, by record id (the latest wins).
    rate_limits: dict[str, dict[str, Any]] = field(default_factory=dict)
    switch: "SwitchState" = field(default_factory=lambda: SwitchState())


@dataclass
class SwitchState:
    """What the bridge knows of the session's model switches: the one still waiting on the agent
    (which keeps running after its HTTP request gave up, so that a late answer is recorded
    rather than silently applied) and how the last one ended."""

    pending: str | None = None
    task: asyncio.Task | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last: dict[str, Any] | None = None

    def finish(self, model_id: str, outcome: str, *, late: bool, error: str | None = None) -> None:
        self.pending = None
        self.last = {"modelId": model_id, "outcome": outcome, "late": late, "at": now_iso(), "error": error}


class SessionManager:
    def __init__(
        self,
        config: Config,
        on_turn_finished: TurnFinished | None = None,
        on_turn_started: TurnStarted | None = None,
    ) -> None:
        self.config = config
        self._on_turn_started = on_turn_started
        self.sessions: dict[str, Session] = {}
        self.turns: set[Turn] = set()
        self._on_turn_finished = on_turn_finished
        self._background: set[asyncio.Task] = set()
        handler = build_handler(
            policy=config.permission_policy,
            session_cwd=self._cwd_of,
            on_update=self._on_update,
            on_ext_notification=self._on_ext_notification,
        )
        self.host = AgentHost(config, handler)
        self.host.on_exit(self._on_agent_exit)
        # Set by the HTTP layer's owner: where rate limits with no session go.
        self.on_orphan_rate_limits: Callable[[list[dict[str, Any]]], None] | None = None

    @property
    def switch_method(self) -> str | None:
        """How the latest session switches models; None until a session exists."""
        latest = next(reversed(self.sessions.values()), None)
        return latest.models.method if latest is not None else None

    # lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        await self.host.start()

    async def cancel_turns(self) -> None:
        """Ask the agent to end every running turn (each stream then ends with its `done`)."""
        for turn in list(self.turns):
            await self._notify_cancel(turn.session_id)

    async def stop(self, grace: float = 3.0) -> None:
        """Cancel every turn, give the agent `grace` seconds to end them, then stop it."""
        await self.cancel_turns()
        if self.turns:
            tasks = [t.task for t in self.turns if t.task is not None]
            await asyncio.wait(tasks, timeout=grace)
        for turn in list(self.turns):
            turn.put("error", {"code": "agent_session_lost", "message": "the bridge is shutting down"})
        await self.host.stop()
        if self._background:
            await asyncio.wait(self._background, timeout=grace)

    def spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # operations ------------------------------------------------------------------------

    async def new_session(self, *, cwd: str, model_id: str | None) -> dict[str, Any]:
        cwd = self._checked_cwd(cwd)
        await self.host.wait_ready()
        generation = self.host.generation
        try:
            result = await self.host.request("session/new", {"cwd": cwd, "mcpServers": []})
        except RequestError as exc:
            if exc.code == INVALID_PARAMS:
                raise invalid_request(f"the agent refused the session: {exc}") from None
            raise from_acp(exc) from None
        except AgentDied:
            raise ErrorAnswer(502, "agent_error", "the agent exited while creating the session") from None
        session_id = result.get("sessionId")
        if not isinstance(session_id, str) or not session_id:
            raise ErrorAnswer(502, "agent_error", "the agent answered session/new without a sessionId")
        session = Session(session_id, cwd, generation, from_new_session(result))
        self.sessions[session_id] = session
        if model_id is not None and model_id != session.models.current:
            await self.set_model(session_id=session_id, model_id=model_id)
        return {
            "sessionId": session_id,
            "modelId": session.models.current,
            "availableModels": session.models.available,
        }

    async def set_model(self, *, session_id: str, model_id: str) -> dict[str, Any]:
        session = self._live(session_id)
        switch = session.switch
        # One switch of a session at a time: a second one waits for the first one's answer, so
        # that the agent's model ends as the last request said, and never in between.
        async with switch.lock:
            previous = switch.task
            if previous is not None and not previous.done():
                # Its outcome, whatever it is, was the earlier request's; only its end matters here.
                done, _ = await asyncio.wait({previous}, timeout=self.config.agent_timeout)
                if not done:
                    raise self._switch_timeout(session)
            state = session.models
            ok = {"ok": True, "sessionId": session_id, "modelId": model_id}
            if model_id == state.current:
                return ok
            if state.available and not state.knows(model_id):
                raise self._rejected(session, model_id, "the agent does not offer this model")
            switch.pending = model_id
            switch.task = asyncio.create_task(self._switch_call(session, model_id))
            self._background.add(switch.task)
            switch.task.add_done_callback(self._background.discard)
            switch.task.add_done_callback(_settled)
            await self._await_switch(session, switch.task)
            return ok

    async def _await_switch(self, session: Session, task: asyncio.Task) -> None:
        """Wait for a switch's answer up to the agent timeout. The call itself is shielded: when
        the wait gives up, the agent still holds the request and may apply it later; the call
        stays open to record that answer (POST /session/state reports it)."""
        try:
            await asyncio.wait_for(asyncio.shield(task), self.config.agent_timeout)
        except TimeoutError:
            raise self._switch_timeout(session) from None

    def _switch_timeout(self, session: Session) -> ErrorAnswer:
        return ErrorAnswer(
            504,
            "agent_timeout",
            f"the agent did not answer the switch within {self.config.agent_timeout:g}s; "
            "it may still apply it (see /session/state)",
            {"sessionId": session.session_id, "pendingModelId": session.switch.pending},
        )

    async def _switch_call(self, session: Session, model_id: str) -> None:
        """The switch as the agent sees it, recorded in `session.switch` whenever it ends."""
        state, switch = session.models, session.switch
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.agent_timeout
        try:
            if state.method == CONFIG_OPTION:
                params = {"sessionId": session.session_id, "configId": state.config_id, "value": model_id}
                result = await self.host.request(
                    "session/set_config_option",
                    params,
                    timeout=self.config.prompt_timeout,
                    generation=session.generation,
                )
                fresh = from_config_options(result.get("configOptions"))
                if fresh is not None:
                    session.models = fresh
            else:
                await self.host.request(
                    "session/set_model",
                    {"sessionId": session.session_id, "modelId": model_id},
                    timeout=self.config.prompt_timeout,
                    generation=session.generation,
                )
        except RequestError as exc:
            switch.finish(model_id, "failed", late=loop.time() > deadline, error=agent_message(exc))
            if exc.code in (METHOD_NOT_FOUND, INVALID_PARAMS):
                raise self._rejected(session, model_id, f"the agent refused the model: {exc}") from None
            raise from_acp(exc, session_id=session.session_id) from None
        except AgentDied:
            switch.finish(model_id, "failed", late=loop.time() > deadline, error="the agent exited")
            raise session_lost(session.session_id, "the agent exited during the switch") from None
        except ErrorAnswer as exc:
            # Even the long wait ended without an answer: whether the agent applied it is unknown.
            switch.finish(model_id, "unknown", late=True, error=exc.message)
            raise
        session.models.current = model_id
        late = loop.time() > deadline
        if late:
            logger.warning("session %s: the agent applied the switch to %s late", session.session_id, model_id)
        switch.finish(model_id, "applied", late=late)

    def state(self, *, session_id: str) -> dict[str, Any]:
        """The session's model as the agent last confirmed it, and its switches."""
        session = self._live(session_id)
        return {
            "sessionId": session_id,
            "modelId": session.models.current,
            "switchPending": session.switch.pending,
            "lastSwitch": session.switch.last,
            "availableModels": session.models.available,
        }

    def prompt(self, *, session_id: str, prompt: Any) -> Turn:
        session = self._live(session_id)
        blocks = prompt_blocks(prompt)
        turn = Turn(session.session_id, cancel=lambda: self.spawn(self._notify_cancel(session.session_id)))
        session.listeners.add(turn)
        self.turns.add(turn)
        turn.task = asyncio.create_task(self._run_turn(session, turn, blocks))
        return turn

    def _notify_cancel(self, session_id: str) -> Awaitable[None]:
        return self.host.notify("session/cancel", {"sessionId": session_id})

    async def cancel(self, *, session_id: str) -> dict[str, Any]:
        self._live(session_id)
        await self._notify_cancel(session_id)
        return {"ok": True}

    # turn ------------------------------------------------------------------------------

    async def _run_turn(self, session: Session, turn: Turn, blocks: list[dict[str, Any]]) -> None:
        session.turns += 1
        turn.number = turn_no = session.turns
        model_id = session.models.current
        if self._on_turn_started is not None:
            self._on_turn_started(session.session_id, model_id)
        usage: dict[str, Any] | None = None
        params = {"sessionId": session.session_id, "prompt": blocks}
        try:
            result = await self.host.request(
                "session/prompt", params, timeout=self.config.prompt_timeout, generation=session.generation
            )
            # Let update notifications that arrived just before the answer reach the queue first.
            await asyncio.sleep(0)
            usage = turn_usage(result.get("usage"))
            turn.put("done", {"stopReason": result.get("stopReason"), "usage": usage})
        except ErrorAnswer as exc:
            if exc.code == "agent_timeout":
                await self._notify_cancel(session.session_id)
            turn.put("error", {"code": exc.code, "message": exc.message})
        except AgentDied:
            turn.put("error", {"code": "agent_session_lost", "message": "the agent exited during the turn"})
        except RequestError as exc:
            error = from_acp(exc, session_id=session.session_id)
            turn.put("error", {"code": error.code, "message": error.message})
        except Exception:
            logger.exception("turn failed")
            turn.put("error", {"code": "agent_error", "message": "the turn failed inside the bridge"})
        finally:
            session.listeners.discard(turn)
            self.turns.discard(turn)
            rate_limits = list(session.rate_limits.values())
            session.rate_limits.clear()
            if self._on_turn_finished is not None:
                self.spawn(
                    self._on_turn_finished(
                        session_id=session.session_id,
                        turn_no=turn_no,
                        model_id=model_id,
                        usage=usage,
                        rate_limits=rate_limits,
                    )
                )

    # agent callbacks -------------------------------------------------------------------

    def _on_update(self, params: dict[str, Any]) -> None:
        session = self.sessions.get(str(params.get("sessionId")))
        if session is None:
            return
        update = params.get("update")
        for record in rate_limit_records(session.session_id, params):
            session.rate_limits[record["id"]] = record
        if isinstance(update, dict) and update.get("sessionUpdate") == "config_option_update":
            fresh = from_config_options(update.get("configOptions"))
            if fresh is not None:
                if fresh.current != session.models.current:
                    logger.info("session %s: the agent reports model %s", session.session_id, fresh.current)
                session.models = fresh
        event = {"sessionId": session.session_id, "update": update}
        for turn in session.listeners:
            turn.put("update", event)

    def _on_ext_notification(self, method: str, params: dict[str, Any]) -> None:
        session = self.sessions.get(str(params.get("sessionId")))
        records = rate_limit_records(session.session_id if session else "", params)
        if not records:
            return
        if session is not None:
            for record in records:
                session.rate_limits[record["id"]] = record
        elif self.on_orphan_rate_limits is not None:
            self.on_orphan_rate_limits(records)

    def _on_agent_exit(self, generation: int) -> None:
        for session in self.sessions.values():
            if session.generation == generation:
                session.lost = True

    def _cwd_of(self, session_id: str) -> str | None:
        session = self.sessions.get(session_id)
        return session.cwd if session is not None and not session.lost else None

    # helpers ---------------------------------------------------------------------------

    def _live(self, session_id: str) -> Session:
        session = self.sessions.get(session_id)
        if session is None:
            raise session_lost(session_id)
        # A session whose agent is gone (even before the restart is noticed everywhere) is lost.
        if session.lost or session.generation != self.host.generation or not self.host.ready:
            raise session_lost(session_id, "the agent restarted since this session was made")
        return session

    def _rejected(self, session: Session, model_id: str, message: str) -> ErrorAnswer:
        return ErrorAnswer(
            400, "model_rejected", message, {"modelId": model_id, "availableModels": session.models.available}
        )

    def _checked_cwd(self, cwd: str) -> str:
        path = Path(cwd)
        if not path.is_absolute():
            raise invalid_request("cwd must be an absolute path", field="cwd")
        resolved = path.resolve()
        root = self.config.cwd_root.resolve() if self.config.cwd_root else None
        if root is not None and resolved != root and root not in resolved.parents:
            raise invalid_request(f"cwd must be inside {root}", field="cwd")
        try:
            resolved.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise invalid_request(f"cwd cannot be created: {exc.strerror}", field="cwd") from None
        return str(resolved)


def _settled(task: asyncio.Task) -> None:
    # A switch whose request gave up still ends in an error nobody awaits: it is recorded in the
    # session's switch state, so retrieve it here rather than have asyncio warn about it.
    if not task.cancelled():
        task.exception()
