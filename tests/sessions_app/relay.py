"""Build signed relay requests as vm_bridge sends them."""

import json
import secrets
import time
from datetime import UTC, datetime, timedelta

from sessions_app.relay_auth import relay_signature


def signed_post(
    client,
    *,
    sandbox_id: str,
    key: str,
    records: list,
    nonce: str | None = None,
    timestamp: int | None = None,
    body: bytes | None = None,
):
    raw = body if body is not None else json.dumps({"sandboxId": sandbox_id, "records": records}).encode()
    ts = str(timestamp if timestamp is not None else int(time.time()))
    nonce = nonce or secrets.token_hex(16)
    return client.generic(
        "POST",
        "/api/internal/usage",
        raw,
        content_type="application/json",
        HTTP_X_MK0R_SANDBOX=sandbox_id,
        HTTP_X_MK0R_TIMESTAMP=ts,
        HTTP_X_MK0R_NONCE=nonce,
        HTTP_X_MK0R_SIGNATURE=relay_signature(key=key, timestamp=ts, nonce=nonce, body=raw),
    )


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def request_record(
    session_id: str,
    record_id: str,
    *,
    at: datetime,
    model: str = "claude-haiku-4-5",
    input_tokens: int = 0,
    write_5m: int = 0,
    write_1h: int = 0,
    read: int = 0,
    output: int = 0,
    **extra,
) -> dict:
    return {
        "id": record_id,
        "kind": "request",
        "source": "transcript",
        "sessionId": session_id,
        "requestId": record_id,
        "model": model,
        "timestamp": iso(at),
        "isSidechain": False,
        "usage": {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": write_5m + write_1h,
            "cache_read_input_tokens": read,
            "output_tokens": output,
            "cache_creation": {"ephemeral_5m_input_tokens": write_5m, "ephemeral_1h_input_tokens": write_1h},
        },
        **extra,
    }


def minutes_ago(n: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=n)
