"""The reference agent: one conversation per ACP session, replayed to the Messages API
each turn with top-level automatic caching, so turn k+1 reads what turn k cached."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from dataclasses import dataclass, field
from typing import Any

import anthropic
from acp import PROTOCOL_VERSION, RequestError, update_agent_message_text
from acp.schema import (
    AgentCapabilities,
    Implementation,
    InitializeResponse,
    NewSessionResponse,
    PromptCapabilities,
    PromptResponse,
    SessionConfigOptionSelect,
    SessionConfigSelectOption,
    SetSessionConfigOptionResponse,
    Usage,
    UsageUpdate,
)

from . import options, transcript

log = logging.getLogger("devstack.agent")

AGENT_NAME = "devstack-reference-agent"
AGENT_VERSION = "0.1.0"
SYSTEM_PROMPT = (
    "You are the reference agent of the mk0r devstack. You help build small web apps. Answer briefly and concretely."
)


@dataclass
class Session:
    id: str
    cwd: str
    model: str = options.DEFAULT
    messages: list[dict] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    cancelled: bool = False
    last_line: str | None = None


def _cache_ttl() -> str:
    ttl = os.environ.get("DEVSTACK_CACHE_TTL", "5m")
    return ttl if ttl in ("5m", "1h") else "5m"


def _model_option(current: str, choices: list[options.ModelChoice]) -> SessionConfigOptionSelect:
    return SessionConfigOptionSelect(
        id="model",
        name="Model",
        description="AI model to use",
        category="model",
        type="select",
        current_value=current,
        options=[SessionConfigSelectOption(value=c.value, name=c.name, description=c.description) for c in choices],
    )


def _prompt_text(blocks: list[Any]) -> str:
    parts = []
    for block in blocks:
        kind = getattr(block, "type", None)
        if kind == "text":
            parts.append(block.text)
        elif kind == "resource":
            text = getattr(block.resource, "text", None)
            if text:
                parts.append(text)
        elif kind == "resource_link":
            parts.append(f"[{block.name}]({block.uri})")
    return "\n\n".join(p for p in parts if p) or "(empty prompt)"


class ReferenceAgent:
    def __init__(self, client: anthropic.AsyncAnthropic | None = None, model_map: dict[str, str] | None = None) -> None:
        self._client = client
        self.choices = options.choices_for(model_map or {})
        self.by_value = {c.value: c for c in self.choices}
        self._conn = None
        self.sessions: dict[str, Session] = {}

    def on_connect(self, conn) -> None:
        self._conn = conn

    @property
    def client(self) -> anthropic.AsyncAnthropic:
        if self._client is None:
            # Reads ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL: the emulator when a base URL is
            # given, the real API otherwise.
            self._client = anthropic.AsyncAnthropic(
                api_key=os.environ.get("ANTHROPIC_API_KEY") or None,
                base_url=os.environ.get("ANTHROPIC_BASE_URL") or None,
                max_retries=2,
                timeout=120.0,
            )
        return self._client

    def _session(self, session_id: str) -> Session:
        session = self.sessions.get(session_id)
        if session is None:
            raise RequestError(-32002, "Session not found", {"sessionId": session_id})
        return session

    async def initialize(
        self, protocol_version: int, client_capabilities=None, client_info=None, **kwargs: Any
    ) -> InitializeResponse:
        return InitializeResponse(
            protocol_version=PROTOCOL_VERSION,
            agent_capabilities=AgentCapabilities(
                load_session=False,
                prompt_capabilities=PromptCapabilities(image=False, audio=False, embedded_context=True),
            ),
            agent_info=Implementation(name=AGENT_NAME, title="Reference agent", version=AGENT_VERSION),
            auth_methods=[],
        )

    async def new_session(self, cwd: str, mcp_servers=None, **kwargs: Any) -> NewSessionResponse:
        session = Session(id=str(uuid.uuid4()), cwd=cwd)
        self.sessions[session.id] = session
        return NewSessionResponse(session_id=session.id, config_options=[_model_option(session.model, self.choices)])

    async def set_config_option(
        self, config_id: str, session_id: str, value: str | bool, **kwargs: Any
    ) -> SetSessionConfigOptionResponse:
        session = self._session(session_id)
        if config_id != "model":
            raise RequestError.invalid_params({"configId": config_id, "reason": "unknown config option"})
        if value not in options.BY_VALUE:
            raise RequestError.invalid_params(
                {"value": value, "reason": "unknown model", "availableModels": list(options.BY_VALUE)}
            )
        session.model = value
        return SetSessionConfigOptionResponse(config_options=[_model_option(session.model, self.choices)])

    async def cancel(self, session_id: str, **kwargs: Any) -> None:
        session = self.sessions.get(session_id)
        if session is not None:
            session.cancelled = True

    async def prompt(self, session_id: str, prompt: list[Any], **kwargs: Any) -> PromptResponse:
        session = self._session(session_id)
        async with session.lock:
            session.cancelled = False
            session.messages.append({"role": "user", "content": _prompt_text(prompt)})
            try:
                return await self._turn(session)
            except anthropic.APIError as exc:
                session.messages.pop()
                raise RequestError.internal_error({"reason": "model API error", "detail": str(exc)}) from exc

    async def _turn(self, session: Session) -> PromptResponse:
        choice = self.by_value[session.model]
        extra_headers = {"anthropic-beta": options.LONG_CONTEXT_BETA} if choice.long_context else None
        async with self.client.messages.stream(
            model=choice.api_model,
            max_tokens=int(os.environ.get("DEVSTACK_MAX_TOKENS", "1024")),
            system=os.environ.get("DEVSTACK_SYSTEM_PROMPT") or SYSTEM_PROMPT,
            messages=session.messages,
            cache_control={"type": "ephemeral", "ttl": _cache_ttl()},
            metadata={"user_id": f"session_{session.id}"},
            extra_headers=extra_headers,
        ) as stream:
            async for text in stream.text_stream:
                if session.cancelled:
                    break
                if text:
                    await self._conn.session_update(session.id, update_agent_message_text(text))
            if session.cancelled:
                final = stream.current_message_snapshot
            else:
                final = await stream.get_final_message()
            request_id = stream.request_id

        text = "".join(b.text for b in final.content if b.type == "text")
        session.messages.append({"role": "assistant", "content": text or "(no reply)"})
        usage = final.usage.model_dump(mode="json", exclude_none=True)
        session.last_line = transcript.append_user(
            cwd=session.cwd,
            session_id=session.id,
            text=session.messages[-2]["content"],
            parent_uuid=session.last_line,
        )
        session.last_line = transcript.append_assistant(
            cwd=session.cwd,
            session_id=session.id,
            request_id=request_id,
            parent_uuid=session.last_line,
            message={
                "id": final.id,
                "type": "message",
                "role": "assistant",
                "model": final.model,
                "content": [b.model_dump(mode="json", exclude_none=True) for b in final.content],
                "stop_reason": final.stop_reason,
                "stop_sequence": final.stop_sequence,
                "usage": usage,
            },
        )
        u = final.usage
        read, write = u.cache_read_input_tokens or 0, u.cache_creation_input_tokens or 0
        used = u.input_tokens + read + write + u.output_tokens
        await self._conn.session_update(
            session.id, UsageUpdate(session_update="usage_update", used=used, size=choice.context_window)
        )
        stop = "cancelled" if session.cancelled else ("max_tokens" if final.stop_reason == "max_tokens" else "end_turn")
        return PromptResponse(
            stop_reason=stop,
            usage=Usage(
                input_tokens=u.input_tokens,
                output_tokens=u.output_tokens,
                cached_read_tokens=read,
                cached_write_tokens=write,
                total_tokens=used,
            ),
        )
