"""Usage relay: signed POSTs to the backend, with a disk spool so no record is lost.

Every batch is first written to the spool (one JSON file per batch, atomic rename), then
sent oldest first. A batch leaves the spool only when the backend answered 2xx, or a 4xx
that says it can never be accepted (moved to `rejected/`, kept for inspection). Anything
else (backend down, 5xx, 429) is retried with exponential backoff, and what is still in the
spool when the bridge stops is sent by the next bridge started on the same spool.
"""

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

logger = logging.getLogger("vm_bridge.relay")

# 4xx answers that may succeed later: keep those batches.
_RETRYABLE_4XX = {408, 425, 429}
_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


def sign(key: str, timestamp: str, nonce: str, body: bytes) -> str:
    message = timestamp.encode() + b"." + nonce.encode() + b"." + body
    return "sha256=" + hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(key: str, sandbox_id: str, body: bytes) -> dict[str, str]:
    timestamp = str(int(time.time()))
    nonce = secrets.token_hex(16)
    return {
        "Content-Type": "application/json",
        "X-Mk0r-Sandbox": sandbox_id,
        "X-Mk0r-Timestamp": timestamp,
        "X-Mk0r-Nonce": nonce,
        "X-Mk0r-Signature": sign(key, timestamp, nonce, body),
    }


class Relay:
    def __init__(
        self,
        *,
        url: str | None,
        sandbox_id: str | None,
        key: str,
        spool_dir: Path,
        backoff: float = 0.5,
        backoff_max: float = 60.0,
    ) -> None:
        self.url = url
        self.sandbox_id = sandbox_id or ""
        self.key = key
        self.spool_dir = spool_dir
        self.backoff = backoff
        self.backoff_max = backoff_max
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._client: httpx.AsyncClient | None = None
        self._stopping = False
        self._stop = asyncio.Event()

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    async def start(self) -> None:
        if not self.enabled:
            logger.info("no --usage-url: usage records are not relayed")
            return
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self._client = httpx.AsyncClient(timeout=_TIMEOUT, follow_redirects=False)
        self._task = asyncio.create_task(self._run(), name="vm_bridge.relay")
        self._wake.set()  # batches left by an earlier bridge go out first

    def enqueue(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        if not self.enabled:
            logger.debug("dropping %d usage records (relay disabled)", len(records))
            return
        body = json.dumps({"sandboxId": self.sandbox_id, "records": records}, separators=(",", ":")).encode()
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.json"
        tmp = self.spool_dir / f".{name}.tmp"
        with tmp.open("wb") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.spool_dir / name)  # readers never see half a batch
        self._wake.set()

    def pending(self) -> list[Path]:
        if not self.spool_dir.is_dir():
            return []
        return sorted(p for p in self.spool_dir.glob("*.json") if not p.name.startswith("."))

    async def stop(self, flush_timeout: float = 5.0) -> None:
        """Try to send what is spooled for up to `flush_timeout` s; the rest stays on disk."""
        if self._task is None:
            return
        self._stopping = True
        self._stop.set()
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), flush_timeout)
        except TimeoutError:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    async def _run(self) -> None:
        delay = self.backoff
        while True:
            if not self._stopping:
                await self._wake.wait()
            self._wake.clear()
            batches = self.pending()
            if not batches and self._stopping:
                return
            for path in batches:
                if not await self._deliver(path):
                    break
            else:
                delay = self.backoff
                continue
            if self._stopping:
                return  # a failed flush at shutdown: the spool keeps it for the next start
            logger.info("usage relay: backend unavailable, retrying in %.1fs", delay)
            with contextlib.suppress(TimeoutError):  # the backoff, cut short by a stop
                await asyncio.wait_for(self._stop.wait(), delay)
            delay = min(delay * 2, self.backoff_max)
            self._wake.set()

    async def _deliver(self, path: Path) -> bool:
        """Send one batch; True when it left the spool, False when it must be retried."""
        try:
            body = path.read_bytes()
        except FileNotFoundError:
            return True
        assert self._client is not None and self.url is not None
        try:
            response = await self._client.post(
                self.url, content=body, headers=signed_headers(self.key, self.sandbox_id, body)
            )
        except httpx.HTTPError as exc:
            logger.info("usage relay: %s", type(exc).__name__)
            return False
        status = response.status_code
        if 200 <= status < 300:
            path.unlink(missing_ok=True)
            return True
        if 400 <= status < 500 and status not in _RETRYABLE_4XX:
            rejected = self.spool_dir / "rejected"
            rejected.mkdir(exist_ok=True)
            os.replace(path, rejected / path.name)
            logger.error("usage relay: backend refused batch %s with %s: %s", path.name, status, response.text[:300])
            return True
        return False
