"""The one agent process: spawn over stdio, initialize, restart when it dies, call it with timeouts.

Many ACP sessions share this one process. Each (re)start is a new *generation*; sessions
remember the generation that made them, so a session made before a restart is known to be
lost instead of hanging on an agent that never heard of it.

The low-level JSON-RPC `Connection` of the ACP SDK is used rather than the typed
`ClientSideConnection`: the bridge must pass `session/update` payloads through exactly as
the agent sent them, read fields the schema does not model (legacy `models` in
`session/new`), and call `session/set_model`, which the current schema no longer has.
"""

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from acp import PROTOCOL_VERSION, RequestError, spawn_stdio_transport
from acp.connection import Connection

from . import __version__
from .config import AGENT_ENV_PASSTHROUGH, Config
from .errors import ErrorAnswer

logger = logging.getLogger("vm_bridge.agent")

# One JSON-RPC line may carry a whole file read by the agent; asyncio's 64 KiB default is too small.
_STDIO_LINE_LIMIT = 50 * 1024 * 1024
_STDERR_LOG_CHARS = 500
# An agent that stayed up this long is considered healthy again: reset the restart backoff.
_HEALTHY_UPTIME = 30.0

ClientHandler = Callable[[str, Any, bool], Awaitable[Any]]


class AgentDied(Exception):
    """The agent process went away while a call was in flight."""


def agent_environment(config: Config) -> dict[str, str]:
    env = {name: os.environ[name] for name in AGENT_ENV_PASSTHROUGH if name in os.environ}
    env.update(config.agent_env)
    return env


class AgentHost:
    def __init__(self, config: Config, handler: ClientHandler) -> None:
        self.config = config
        self._handler = handler
        self.generation = 0
        self.info: dict[str, Any] = {}
        self.protocol_version: int | None = None
        self._conn: Connection | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._ready = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task | None = None
        self._exit_listeners: list[Callable[[int], None]] = []

    # lifecycle -------------------------------------------------------------------------

    def on_exit(self, listener: Callable[[int], None]) -> None:
        """Call `listener(generation)` each time an agent generation ends."""
        self._exit_listeners.append(listener)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name="vm_bridge.agent")

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self._conn is not None

    async def stop(self) -> None:
        self._stopping = True
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.terminate()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=10)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()

    async def _supervise(self) -> None:
        backoff = self.config.restart_backoff
        loop = asyncio.get_running_loop()
        while not self._stopping:
            started = loop.time()
            try:
                await self._run_generation()
            except Exception as exc:
                if self._stopping:
                    return
                logger.warning("agent generation %s failed: %s: %s", self.generation, type(exc).__name__, exc)
            if self._stopping:
                return
            if loop.time() - started > _HEALTHY_UPTIME:
                backoff = self.config.restart_backoff
            logger.warning("agent exited; restarting in %.1fs", backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.config.restart_backoff_max)

    async def _run_generation(self) -> None:
        self.generation += 1
        generation = self.generation
        command, *args = self.config.agent_cmd
        logger.info("starting agent generation %s: %s", generation, " ".join(self.config.agent_cmd))
        try:
            async with spawn_stdio_transport(
                command, *args, env=agent_environment(self.config), limit=_STDIO_LINE_LIMIT
            ) as (reader, writer, process):
                self._process = process
                conn = Connection(self._handler, writer, reader)
                stderr_task = asyncio.create_task(_drain_stderr(process.stderr, generation))
                try:
                    await self._initialize(conn)
                    self._conn = conn
                    self._ready.set()
                    logger.info("agent ready: %s", self.info)
                    await process.wait()
                    logger.warning("agent generation %s exited with %s", generation, process.returncode)
                finally:
                    self._ready.clear()
                    self._conn = None
                    # Closing rejects every call still waiting on this agent.
                    await conn.close()
                    stderr_task.cancel()
        finally:
            self._process = None
            for listener in self._exit_listeners:
                listener(generation)

    async def _initialize(self, conn: Connection) -> None:
        params = {
            "protocolVersion": PROTOCOL_VERSION,
            "clientCapabilities": {"fs": {"readTextFile": True, "writeTextFile": True}, "terminal": False},
            "clientInfo": {"name": "mk0r-vm-bridge", "version": __version__},
        }
        result = await asyncio.wait_for(conn.send_request("initialize", params), self.config.init_timeout)
        result = result or {}
        self.protocol_version = result.get("protocolVersion")
        info = result.get("agentInfo") or {}
        self.info = {"name": info.get("name") or self.config.agent_cmd[0], "version": info.get("version")}

    # calls ----------------------------------------------------------------------------

    async def wait_ready(self) -> Connection:
        if not self.ready:
            try:
                await asyncio.wait_for(self._ready.wait(), self.config.start_wait)
            except TimeoutError:
                raise ErrorAnswer(503, "agent_starting", "the agent is starting; retry shortly") from None
        assert self._conn is not None
        return self._conn

    async def request(
        self, method: str, params: dict[str, Any], *, timeout: float | None = None, generation: int | None = None
    ) -> dict:
        """Call the agent. Raises RequestError (agent said no), AgentDied, or ErrorAnswer 503/504.

        With `generation`, the call only goes to that agent generation: a session's call must
        never reach a restarted agent that has never heard of the session.
        """
        conn = await self.wait_ready()
        if generation is not None and generation != self.generation:
            raise AgentDied(f"agent generation {generation} is gone")
        timeout = self.config.agent_timeout if timeout is None else timeout
        try:
            result = await asyncio.wait_for(conn.send_request(method, params), timeout)
        except TimeoutError:
            raise ErrorAnswer(504, "agent_timeout", f"the agent did not answer {method} within {timeout:g}s") from None
        except RequestError:
            raise
        except ConnectionError as exc:
            # The pipe is gone before the process exit is noticed: stop routing calls here now.
            if generation is None or generation == self.generation:
                self._ready.clear()
            raise AgentDied(str(exc)) from exc
        return result if isinstance(result, dict) else {}

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        conn = self._conn
        if conn is None:
            return
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            await asyncio.wait_for(conn.send_notification(method, params), self.config.agent_timeout)


async def _drain_stderr(stream: asyncio.StreamReader | None, generation: int) -> None:
    # Always read stderr so a chatty agent never blocks on a full pipe; it only ever goes to
    # the bridge's own log, truncated, never to a client.
    if stream is None:
        return
    agent_log = logging.getLogger("vm_bridge.agent.stderr")
    while True:
        try:
            line = await stream.readline()
        except (ValueError, asyncio.LimitOverrunError):
            continue
        if not line:
            return
        text = line.decode("utf-8", "replace").rstrip()
        if len(text) > _STDERR_LOG_CHARS:
            text = text[:_STDERR_LOG_CHARS] + "…"
        agent_log.info("[gen %s] %s", generation, text)
