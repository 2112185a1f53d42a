"""Usage relay: signed POSTs to the backend, with a disk spool so no record is lost.

Every batch is first written to the spool (one JSON file per batch, atomic rename; a turn's
records are split so that no batch nears the backend's body limit), then sent oldest first.
A batch leaves the spool when the backend answered 2xx, or a 4xx that says it can never be
accepted (moved to `rejected/`, kept for inspection; when the answer names one record of
several, only that record is set aside and the others are sent again). The backend being unreachable, 408,
425 or 429 is retried with exponential backoff, for as long as it takes. A 5xx is retried
too, but counts against the batch: once a batch got `max_attempts` of them it no longer holds
up the batches behind it, and when one of those is accepted (so the backend works, and the
fault is the batch's own) it is moved to `failed/`, logged and counted. What is still in
the spool when the bridge stops is sent by the next bridge started on the same spool.
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
# Half the backend's default body limit (64 KiB), and its record limit (500) with room.
MAX_BATCH_BYTES = 32 * 1024
MAX_BATCH_RECORDS = 200
REJECTED_DIR = "rejected"  # refused with a 4xx
FAILED_DIR = "failed"  # 5xx past the budget while later batches went through

# What one delivery attempt came to.
SENT = "sent"
SET_ASIDE = "set_aside"  # refused for good, or already gone
FAILED = "failed"  # a 5xx: counts against the batch
UNAVAILABLE = "unavailable"  # no answer, or "try later": counts against nobody
# How a pass over the spool ended.
CLEAR = "clear"
WAITING = "waiting"  # the backend is unavailable, or failed a batch that has retries left
SPENT_WAITING = "spent_waiting"  # only batches past their budget failed


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
        max_attempts: int = 6,
    ) -> None:
        self.url = url
        self.sandbox_id = sandbox_id or ""
        self.key = key
        self.spool_dir = spool_dir
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.max_attempts = max_attempts
        # 5xx answers per spooled batch (by file name) in this process.
        self._failures: dict[str, int] = {}
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
        stamp = time.time_ns()
        for number, batch in enumerate(_batches(records)):
            name = f"{stamp:020d}-{number:03d}-{uuid.uuid4().hex[:8]}.json"
            _write(self.spool_dir / name, {"sandboxId": self.sandbox_id, "records": batch})
        self._wake.set()

    def pending(self) -> list[Path]:
        if not self.spool_dir.is_dir():
            return []
        return sorted(p for p in self.spool_dir.glob("*.json") if not p.name.startswith("."))

    def figures(self) -> dict[str, int]:
        """The spool for /health: batches waiting, and those moved aside (both kinds)."""
        failed = _count(self.spool_dir / FAILED_DIR)
        rejected = _count(self.spool_dir / REJECTED_DIR)
        return {"depth": len(self.pending()), "movedAside": failed + rejected, "failed": failed, "rejected": rejected}

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
            state = await self._send(batches)
            if state == CLEAR:
                delay = self.backoff
                continue
            if self._stopping:
                return  # a failed flush at shutdown: the spool keeps it for the next start
            logger.info("usage relay: batches wait, retrying in %.1fs", delay)
            # Only batches past their budget failed: a new batch may go at once (it is the
            # test of whether they are at fault). Otherwise the backoff, cut short by a stop.
            waiter = self._wake if state == SPENT_WAITING else self._stop
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.wait(), delay)
            delay = min(delay * 2, self.backoff_max)
            self._wake.set()

    async def _send(self, batches: list[Path]) -> str:
        """One pass over the spool, oldest first: CLEAR, WAITING or SPENT_WAITING."""
        spent: list[Path] = []  # past their budget and failed again in this pass
        for path in batches:
            outcome = await self._deliver(path)
            if outcome == SENT:
                for batch in spent:  # the backend took a later batch: their fault is their own
                    self._move_aside(batch)
                spent.clear()
            elif outcome == FAILED and self._failures.get(path.name, 0) >= self.max_attempts:
                spent.append(path)
            elif outcome != SET_ASIDE:
                return WAITING
        return SPENT_WAITING if spent else CLEAR

    async def _deliver(self, path: Path) -> str:
        """Send one batch; what came of it (SENT, SET_ASIDE, FAILED, UNAVAILABLE)."""
        try:
            body = path.read_bytes()
        except FileNotFoundError:
            return SET_ASIDE
        assert self._client is not None and self.url is not None
        try:
            response = await self._client.post(
                self.url, content=body, headers=signed_headers(self.key, self.sandbox_id, body)
            )
        except httpx.HTTPError as exc:
            logger.info("usage relay: %s", type(exc).__name__)
            return UNAVAILABLE
        status = response.status_code
        if 200 <= status < 300:
            path.unlink(missing_ok=True)
            self._failures.pop(path.name, None)
            return SENT
        if 400 <= status < 500 and status not in _RETRYABLE_4XX:
            if self._split_off(path, body, response):
                self._wake.set()  # the rest of the batch goes in the next pass
                return SET_ASIDE
            self._set_aside(path, REJECTED_DIR)
            logger.error("usage relay: backend refused batch %s with %s: %s", path.name, status, response.text[:300])
            return SET_ASIDE
        if status >= 500:
            self._failures[path.name] = self._failures.get(path.name, 0) + 1
            logger.warning(
                "usage relay: batch %s got %s (%d of %d)",
                path.name,
                status,
                self._failures[path.name],
                self.max_attempts,
            )
            return FAILED
        return UNAVAILABLE

    def _split_off(self, path: Path, body: bytes, response: httpx.Response) -> bool:
        """When the backend refused a batch of several records for one of them (its answer's
        `extra.index`), set that record aside in `rejected/` and keep the others in the spool."""
        try:
            index = response.json()["extra"]["index"]
            payload = json.loads(body)
            records = payload["records"]
        except (ValueError, KeyError, TypeError):
            return False
        if not isinstance(records, list) or len(records) < 2:
            return False
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(records):
            return False
        bad = records.pop(index)
        (self.spool_dir / REJECTED_DIR).mkdir(exist_ok=True)
        _write(self.spool_dir / REJECTED_DIR / f"{path.stem}-record-{index}.json", {**payload, "records": [bad]})
        _write(path, payload)
        logger.error(
            "usage relay: backend refused record %d of batch %s with %s: %s; the other %d stay in the spool",
            index,
            path.name,
            response.status_code,
            response.text[:300],
            len(records),
        )
        return True

    def _move_aside(self, path: Path) -> None:
        self._set_aside(path, FAILED_DIR)
        logger.error(
            "usage relay: batch %s failed %d times while later batches went through; moved to %s/",
            path.name,
            self.max_attempts,
            FAILED_DIR,
        )

    def _set_aside(self, path: Path, folder: str) -> None:
        (self.spool_dir / folder).mkdir(exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, self.spool_dir / folder / path.name)
        self._failures.pop(path.name, None)


def _batches(records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Consecutive runs of records, each at most MAX_BATCH_RECORDS and (unless one record is
    bigger on its own) MAX_BATCH_BYTES of JSON."""
    batches: list[list[dict[str, Any]]] = [[]]
    size = 0
    for record in records:
        length = len(json.dumps(record, separators=(",", ":"))) + 1
        if batches[-1] and (size + length > MAX_BATCH_BYTES or len(batches[-1]) >= MAX_BATCH_RECORDS):
            batches.append([])
            size = 0
        batches[-1].append(record)
        size += length
    return batches


def _write(path: Path, payload: dict[str, Any]) -> None:
    """Write a batch durably, all at once: readers never see half of one."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as fh:
        fh.write(json.dumps(payload, separators=(",", ":")).encode())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _count(folder: Path) -> int:
    try:
        return sum(1 for entry in os.scandir(folder) if entry.name.endswith(".json"))
    except FileNotFoundError:
        return 0
