"""A recording ACP client over stdio, built on the `acp` SDK (shared with tests/interop)."""

from __future__ import annotations

import contextlib
from typing import Any

from acp import RequestError
from acp.schema import DeniedOutcome, RequestPermissionResponse
from acp.stdio import spawn_agent_process


class Recorder:
    """The client side: records session/update notifications, denies permissions."""

    def __init__(self) -> None:
        self.updates: list[tuple[str, dict]] = []

    async def session_update(self, session_id: str, update: Any, **kwargs: Any) -> None:
        self.updates.append((session_id, update.model_dump(mode="json", by_alias=True, exclude_none=True)))

    async def request_permission(
        self, session_id: str, tool_call: Any, options: Any, **kwargs: Any
    ) -> RequestPermissionResponse:
        return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))

    async def ext_method(self, method: str, params: dict) -> dict:
        raise RequestError.method_not_found(method)

    async def ext_notification(self, method: str, params: dict) -> None:
        return None

    def kinds(self, session_id: str) -> list[str]:
        return [u["sessionUpdate"] for sid, u in self.updates if sid == session_id]

    def of_kind(self, session_id: str, kind: str) -> list[dict]:
        return [u for sid, u in self.updates if sid == session_id and u["sessionUpdate"] == kind]

    def text(self, session_id: str) -> str:
        return "".join(u["content"].get("text", "") for u in self.of_kind(session_id, "agent_message_chunk"))


@contextlib.asynccontextmanager
async def acp_agent(argv: list[str], *, env: dict[str, str], cwd: str, stderr_path: str | None = None):
    """Spawn an agent, initialize it, yield (connection, recorder, initialize response)."""
    recorder = Recorder()
    with contextlib.ExitStack() as stack:
        stderr = stack.enter_context(open(stderr_path or "/dev/null", "ab"))  # noqa: SIM115
        async with spawn_agent_process(
            recorder,
            argv[0],
            *argv[1:],
            env=env,
            cwd=cwd,
            transport_kwargs={"limit": 64 * 1024 * 1024, "stderr": stderr.fileno()},
        ) as (conn, _process):
            init = await conn.initialize(protocol_version=1)
            yield conn, recorder, init


async def raw_request(conn, method: str, params: dict) -> Any:
    """A request the SDK has no typed method for (e.g. the legacy session/set_model)."""
    return await conn._conn.send_request(method, params)
